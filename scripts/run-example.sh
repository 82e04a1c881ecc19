#!/usr/bin/env bash
# make run: the main job. Until the supervisor lands this runs the ring
# benchmark (the ring is what everything else is built on).
set -eu
build=${1:-build}
exec "$build/bench/ring_bench"
