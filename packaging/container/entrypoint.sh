#!/bin/sh
# The container's entrypoint: registers the runner from the environment when /data holds no
# registration yet, then runs `runnel daemon` (exec'd, so tini's signals reach it directly).
# Any arguments replace the daemon command, e.g. `docker run IMAGE runnel doctor`.
set -eu

if [ "$#" -gt 0 ]; then
    exec "$@"
fi

state="${RUNNER_STATE_FILE:-.runner}"
config_args=""
if [ -n "${CONFIG_FILE:-}" ]; then
    config_args="-c $CONFIG_FILE"
fi

if [ ! -s "$state" ]; then
    token="${GITEA_RUNNER_REGISTRATION_TOKEN:-}"
    if [ -z "$token" ] && [ -n "${GITEA_RUNNER_REGISTRATION_TOKEN_FILE:-}" ]; then
        token="$(cat "$GITEA_RUNNER_REGISTRATION_TOKEN_FILE")"
    fi
    if [ -z "${GITEA_INSTANCE_URL:-}" ] || [ -z "$token" ]; then
        echo "runnel-entrypoint: $state is missing: set GITEA_INSTANCE_URL and" \
            "GITEA_RUNNER_REGISTRATION_TOKEN (or _FILE) to register, or mount a /data that" \
            "holds a registration" >&2
        exit 2
    fi
    set -- register --no-interactive --instance "$GITEA_INSTANCE_URL" --token "$token"
    if [ -n "${GITEA_RUNNER_NAME:-}" ]; then
        set -- "$@" --name "$GITEA_RUNNER_NAME"
    fi
    if [ -n "${GITEA_RUNNER_LABELS:-}" ]; then
        set -- "$@" --labels "$GITEA_RUNNER_LABELS"
    fi
    # As the Gitea runner's entrypoint: any non-empty value (even `false`) asks for it.
    if [ -n "${GITEA_RUNNER_EPHEMERAL:-}" ]; then
        set -- "$@" --ephemeral
    fi
    # Gitea may still be starting (compose): retry a few times.
    attempt=1
    # shellcheck disable=SC2086 # config_args is empty or two words on purpose
    until runnel "$@" $config_args; do
        if [ "$attempt" -ge "${GITEA_MAX_REG_ATTEMPTS:-10}" ]; then
            echo "runnel-entrypoint: registration failed $attempt times; giving up" >&2
            exit 1
        fi
        attempt=$((attempt + 1))
        sleep 5
    done
    set --
fi

# The daemon never needs the registration token (nor do its jobs).
unset GITEA_RUNNER_REGISTRATION_TOKEN GITEA_RUNNER_REGISTRATION_TOKEN_FILE
# As the Gitea runner's entrypoint: any non-empty GITEA_RUNNER_ONCE (even `false`) runs one job.
# GITEA_RUNNER_LABELS reaches the daemon through the environment (`daemon --labels`' variable).
once_arg=""
if [ -n "${GITEA_RUNNER_ONCE:-}" ]; then
    once_arg="--once"
fi
# shellcheck disable=SC2086
exec runnel daemon $config_args $once_arg
