package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// TestRun runs the example for 2 s and checks from its output that the
// viewers got every packet while the slow sink stalled, and that the slow
// sink dropped, asked for a keyframe and resumed from one.
func TestRun(t *testing.T) {
	o := defaultOptions()
	o.Duration = 2 * time.Second
	o.StallAt = 300 * time.Millisecond
	// The stall must outlast the queue's filling by more than the camera's
	// keyframe request interval (500 ms), or the request asking again after
	// the stall is merged into the first one.
	o.StallFor = time.Second
	o.SlowQueue = 16
	o.StatsEvery = 500 * time.Millisecond
	o.DOTFile = filepath.Join(t.TempDir(), "fanout.dot")

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var out bytes.Buffer
	start := time.Now()
	require.NoError(t, run(ctx, &out, o))
	t.Logf("run took %v", time.Since(start))
	text := out.String()
	t.Log(text)

	for _, want := range []string{
		"ElementConnected         camera.src -> viewer1.sink (video)",
		"ElementConnected         camera.src -> slow.sink (video)",
		"MediaFlowOutStateChanged camera.src video FLOWING",
		"MediaFlowInStateChanged  viewer2.sink video FLOWING",
		"EndOfStream              camera.src",
		"-- stats at",
		"slow    stalls for 1s",
		`digraph "fanout"`,
	} {
		assert.Contains(t, text, want)
	}
	assert.NotContains(t, text, "WITHOUT a keyframe")
	assert.NotContains(t, text, "bus   Error")

	sent := atoi(t, match(t, text, `camera: sent \d+ frames in (\d+) packets`)[1])
	assert.Greater(t, sent, 0)
	assert.GreaterOrEqual(t, atoi(t, match(t, text, `(\d+) keyframe requests? reached it`)[1]), 1)
	for _, v := range []string{"viewer1", "viewer2"} {
		m := match(t, text, v+`: received (\d+) of (\d+) packets, (\d+) lost`)
		assert.Equal(t, sent, atoi(t, m[1]), "%s received", v)
		assert.Equal(t, 0, atoi(t, m[3]), "%s lost", v)
	}
	m := match(t, text, `slow: received (\d+) of \d+ packets, (\d+) lost, \d+ keyframes?; its queue dropped (\d+) and asked for (\d+) keyframes?; resumed from a keyframe after 1 gap`)
	assert.Positive(t, atoi(t, m[1]), "slow received")
	assert.Positive(t, atoi(t, m[3]), "slow dropped")
	assert.Equal(t, atoi(t, m[2]), atoi(t, m[3]), "slow lost only what its queue dropped")
	assert.GreaterOrEqual(t, atoi(t, m[4]), 1, "slow asked for keyframes")

	dot, err := os.ReadFile(o.DOTFile)
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(string(dot), `digraph "fanout" {`))
	assert.Contains(t, string(dot), "->")
}

func TestRunRejectsBadOptions(t *testing.T) {
	o := defaultOptions()
	o.Sinks = 0
	assert.Error(t, run(context.Background(), &bytes.Buffer{}, o))
	o = defaultOptions()
	o.Duration = 0
	assert.Error(t, run(context.Background(), &bytes.Buffer{}, o))
}

// TestRunCancelled checks that cancelling the context ends the program
// early, with every goroutine gone (goleak), even while a sink is stalled.
func TestRunCancelled(t *testing.T) {
	o := defaultOptions()
	o.StallAt = 0
	o.StallFor = time.Minute
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := run(ctx, &bytes.Buffer{}, o)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Less(t, time.Since(start), 5*time.Second)
}

func match(t *testing.T, text, re string) []string {
	t.Helper()
	m := regexp.MustCompile(re).FindStringSubmatch(text)
	require.NotNil(t, m, "output lacks %q", re)
	return m
}

func atoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	require.NoError(t, err)
	return n
}
