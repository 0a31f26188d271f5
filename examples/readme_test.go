package examples_test

import (
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestREADMEExample checks that the README's Go example is Example's body,
// so that the code the README shows is the code the tests compile and run.
func TestREADMEExample(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	require.NoError(t, err)
	src, err := os.ReadFile("readme_example_test.go")
	require.NoError(t, err)

	_, block, ok := strings.Cut(string(readme), "```go\n")
	require.True(t, ok, "README has no ```go block")
	block, _, ok = strings.Cut(block, "```\n")
	require.True(t, ok, "README's ```go block is not closed")

	_, body, ok := strings.Cut(string(src), "func Example() {\n")
	require.True(t, ok)
	body, _, ok = strings.Cut(body, "\t// Output:")
	require.True(t, ok)
	var want strings.Builder
	for _, line := range strings.Split(strings.TrimRight(body, "\n"), "\n") {
		want.WriteString(strings.TrimPrefix(line, "\t"))
		want.WriteByte('\n')
	}
	assert.Equal(t, want.String(), block, "README.md's example and Example in readme_example_test.go differ")
}
