#!/bin/sh
# A build script whose pipeline, jobs and steps appear in Datadog CI Visibility while they run.
# Each `run` is one span; a `run` inside another's command (here, through `sh -c` and through
# this very script) lands under it, with exact links, in one trace: the outer run passes its
# trace context (TRACEPARENT) and CI lineage (DD_CI_*) to its command's environment.
#
#   DD_API_KEY=... ./examples/build.sh                 # to Datadog
#   DD_CI_PIPELINE_ENDPOINT=http://127.0.0.1:8126/api/v2/ci/pipeline ./examples/build.sh   # to a local intake
#
# Levels are chosen by depth: the first run is the pipeline, runs under it are jobs, runs under
# a job are steps (override with --level). Exit codes pass through unchanged.
set -eu
RUN="${RUN:-npx --no-install datadog-ci-pipeline-exporter run}"
URL="${BUILD_URL:-https://ci.example.com/builds/local}"

if [ -z "${BUILD_SH_IN_PIPELINE:-}" ]; then
  # Not yet inside the pipeline: wrap this whole script in it, and start again inside it.
  # (A variable of our own: without an API key, run adds nothing to the environment.)
  export BUILD_SH_IN_PIPELINE=1
  exec $RUN --name "build $(basename "$PWD")" --url "$URL" -- "$0" "$@"
fi

# Inside the pipeline: each job wraps its steps.
$RUN --name lint --url "$URL#lint" -- sh -c "
  $RUN --name 'npm ci' -- npm ci --no-audit --no-fund
  $RUN --name eslint -- npx eslint .
"
$RUN --name test --url "$URL#test" -- sh -c "
  $RUN --name 'unit tests' -- npm test
"
