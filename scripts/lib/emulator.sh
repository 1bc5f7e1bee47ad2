# Sourced by scripts/test and scripts/bench: the pinned test tools in .venv, and the
# AWS emulator (moto, one request at a time) on a free loopback port.

venv="${VENV:-.venv}"

# Creates .venv and installs requirements-test.txt unless already installed.
install_test_tools() {
  if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
  fi
  local stamp="$venv/.requirements-test.txt"
  if ! cmp -s requirements-test.txt "$stamp"; then
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r requirements-test.txt
    cp requirements-test.txt "$stamp"
  fi
}

# Starts the emulator, waits until it answers, and points every AWS client of this
# shell and its children at it. Stops it when the shell exits.
start_emulator() {
  mkdir -p target
  local port
  port=$("$venv/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  "$venv/bin/python" scripts/emulator.py 127.0.0.1 "$port" >target/moto.log 2>&1 &
  moto_pid=$!
  trap 'kill "$moto_pid" 2>/dev/null || true; wait "$moto_pid" 2>/dev/null || true' EXIT
  "$venv/bin/python" - "$port" <<'PY'
import sys, time, urllib.request
url = f"http://127.0.0.1:{sys.argv[1]}/moto-api/"
for _ in range(300):
    try:
        urllib.request.urlopen(url, timeout=1)
        sys.exit(0)
    except Exception:
        time.sleep(0.1)
sys.exit("moto_server did not start; see target/moto.log")
PY
  export AWS_ENDPOINT_URL="http://127.0.0.1:$port"
  export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_SESSION_TOKEN=testing
  export AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
  export AWS_EC2_METADATA_DISABLED=true
  unset AWS_PROFILE AWS_CONFIG_FILE AWS_SHARED_CREDENTIALS_FILE
}
