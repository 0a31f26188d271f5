package endpoint_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if any goroutine outlives them: every
// endpoint, peer connection and pipeline a test makes must be closed.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
