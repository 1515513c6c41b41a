# Sourced by the set-up scripts: create (or reuse) the virtual environment .venv in the checkout and put it first
# on PATH, so nothing is installed into the system Python (Debian's and Ubuntu's own Python refuse that).
# VENV_DIR names another one (scripts/test.sh keeps a second, with the lowest supported Tornado).
venv_dir="${VENV_DIR:-.venv}"
if [ ! -x "$venv_dir/bin/python" ]; then
  if ! python3 -m venv "$venv_dir" 2>/dev/null; then
    # Debian/Ubuntu ship venv separately; CI and set-up run as root, so install it when missing.
    if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
      rm -rf "$venv_dir" && python3 -m venv "$venv_dir"
    else
      echo "python3 -m venv failed: install your distribution's python3-venv package" >&2
      exit 1
    fi
  fi
fi
export VIRTUAL_ENV="$PWD/$venv_dir"
export PATH="$VIRTUAL_ENV/bin:$PATH"
python -m pip install -q --upgrade pip >/dev/null 2>&1 || true
