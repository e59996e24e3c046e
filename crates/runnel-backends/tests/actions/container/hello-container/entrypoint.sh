#!/bin/sh
# Reports what the step container was given, and sets an output.
echo "hello $INPUT_WHO argc=$# 1=$1 2=$2"
echo "env FROM_ACTION=$FROM_ACTION STEP=$STEP_VALUE"
echo "at $PWD home=$HOME workspace=$GITHUB_WORKSPACE"
if test -f "$GITHUB_EVENT_PATH"; then echo "event file present"; fi
if test -f marker.txt; then echo "workspace has marker.txt"; fi
echo "greeting=hello-$INPUT_WHO" >> "$GITHUB_OUTPUT"
echo "::notice::a command from the container"
