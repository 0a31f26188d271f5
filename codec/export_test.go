package codec

// IndexStartCode exports indexStartCode to the tests.
var IndexStartCode = indexStartCode
