# The pinned Python plugin toolchain and where it lives; sourced by setup.sh
# and build.sh so both agree on versions and paths.
WEIR_CACHE=${WEIR_CACHE:-$HOME/.cache/weir}
# 0.25.x: the component model with WIT worlds of our shape (interfaces,
# records, variants, results); bundles CPython 3.14 and its stdlib.
COMPONENTIZE_PY_VERSION=0.25.1
# Pure Python JSON Schema (drafts 4, 6, 7), bundled into json-schema. The
# `jsonschema` package needs the native rpds-py and cannot run in wasm.
FASTJSONSCHEMA_VERSION=2.22.3
COMPONENTIZE_PY_VENV="$WEIR_CACHE/componentize-py-$COMPONENTIZE_PY_VERSION"
PYTHON_DEPS="$WEIR_CACHE/python-deps/fastjsonschema-$FASTJSONSCHEMA_VERSION"
