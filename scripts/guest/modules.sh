# Sourced by build.sh and build-agent.sh (their stamps hash this file too): copies kernel modules into an
# initrd tree, decompressed (busybox insmod may not read .ko.xz/.ko.zst/.ko.gz).
#
#   unpack_modules WHO DEST MODULE...    (MODULE: a path relative to $MODDIR, in load order)
#
# Sets INSMODS to the modules' names, space-separated, in the same order. WHO names the caller in errors.
unpack_modules() {
  local who=$1 dest=$2 m base
  shift 2
  INSMODS=""
  for m in "$@"; do
    base=$(basename "$m")
    case "$base" in
      *.ko) cp "$MODDIR/$m" "$dest/$base" ;;
      *.ko.xz) xz -dc "$MODDIR/$m" > "$dest/${base%.xz}"; base=${base%.xz} ;;
      *.ko.zst) command -v zstd >/dev/null || { echo "$who: zstd is missing" >&2; exit 1; }
                zstd -qdc "$MODDIR/$m" > "$dest/${base%.zst}"; base=${base%.zst} ;;
      *.ko.gz) gzip -dc "$MODDIR/$m" > "$dest/${base%.gz}"; base=${base%.gz} ;;
      *) echo "$who: unexpected module file $m" >&2; exit 1 ;;
    esac
    INSMODS="$INSMODS ${base%.ko}"
  done
  INSMODS=${INSMODS# }
}
