# Sourced by scripts/test and scripts/bench: the pinned test tools in .venv, the AWS
# emulator (moto, one request at a time) and the strict DynamoDB emulator (dynalite,
# scripts/dynalite/) on free loopback ports.

venv="${VENV:-.venv}"
dynalite_dir=scripts/dynalite

# Creates .venv and installs requirements-test.txt, and dynalite as package-lock.json
# pins it, unless already installed.
install_test_tools() {
  if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
  fi
  local stamp="$venv/.requirements-test.txt"
  if ! cmp -s requirements-test.txt "$stamp"; then
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r requirements-test.txt
    cp requirements-test.txt "$stamp"
  fi
  if ! cmp -s "$dynalite_dir/package-lock.json" "$dynalite_dir/node_modules/.package-lock.json"; then
    npm ci --prefix "$dynalite_dir" --no-audit --no-fund --loglevel=error
  fi
}

# A free TCP port on loopback.
free_port() {
  "$venv/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Waits until `url` answers (any HTTP status), or fails naming `log`.
wait_for() {
  "$venv/bin/python" - "$1" "$2" <<'PY'
import sys, time, urllib.error, urllib.request
url, log = sys.argv[1], sys.argv[2]
for _ in range(300):
    try:
        urllib.request.urlopen(url, timeout=1)
        sys.exit(0)
    except urllib.error.HTTPError:
        sys.exit(0)
    except Exception:
        time.sleep(0.1)
sys.exit(f"{url} did not answer; see {log}")
PY
}

# Starts the emulators (two motos and dynalite), waits until they answer, and points
# every AWS client of this shell and its children at the first moto; SECOND_MOTO_URL
# names the second, DYNALITE_URL dynalite, for AWS_ENDPOINT_URL_DYNAMODB. Stops them
# when the shell exits.
start_emulator() {
  mkdir -p target
  local port second_port dynalite_port
  port=$(free_port)
  second_port=$(free_port)
  dynalite_port=$(free_port)
  "$venv/bin/python" scripts/emulator.py 127.0.0.1 "$port" >target/moto.log 2>&1 &
  moto_pid=$!
  # A second moto, so that the dynalite pass of the tests can run beside the first.
  "$venv/bin/python" scripts/emulator.py 127.0.0.1 "$second_port" >target/moto-2.log 2>&1 &
  second_moto_pid=$!
  node "$dynalite_dir/serve.js" "$dynalite_port" >target/dynalite.log 2>&1 &
  dynalite_pid=$!
  trap 'kill "$moto_pid" "$second_moto_pid" "$dynalite_pid" 2>/dev/null || true; wait "$moto_pid" "$second_moto_pid" "$dynalite_pid" 2>/dev/null || true' EXIT
  wait_for "http://127.0.0.1:$port/moto-api/" target/moto.log
  wait_for "http://127.0.0.1:$second_port/moto-api/" target/moto-2.log
  wait_for "http://127.0.0.1:$dynalite_port/" target/dynalite.log
  export SECOND_MOTO_URL="http://127.0.0.1:$second_port"
  export DYNALITE_URL="http://127.0.0.1:$dynalite_port"
  export AWS_ENDPOINT_URL="http://127.0.0.1:$port"
  export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_SESSION_TOKEN=testing
  export AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
  export AWS_EC2_METADATA_DISABLED=true
  unset AWS_PROFILE AWS_CONFIG_FILE AWS_SHARED_CREDENTIALS_FILE
}
