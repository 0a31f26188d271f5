package ffmpeg

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// checkNoLiveObjects registers a check, run after the test's other
// cleanups, that every FFmpeg object the test made was freed.
func checkNoLiveObjects(t *testing.T) {
	t.Helper()
	t.Cleanup(func() {
		assert.True(t, LiveObjects().Zero(), "FFmpeg objects still alive after the test: %+v", LiveObjects())
	})
}
