#!/usr/bin/env bash
# Fetch, here, the wheels of what bench/device_check.sh needs on the GPU machine and its image lacks.
#
#     bash bench/device_wheels.sh          # -> .whl/ (ignored by git; the device tool's run carries it: carry [".whl"])
#
# The GPU image (Python 3.12, torch 2.11 + CUDA, numpy, scipy, safetensors, tokenizers, rich, matplotlib,
# pytest, httpx, anyio, uvloop, prometheus-client: /work/.library/device/KINDS.md) has guimo's core
# dependencies but not the 'serve' and 'optimize' extras, and nothing can be fetched there. These are the
# versions this project's .venv runs (pure-Python wheels, or cp312 manylinux ones), without their own
# dependencies: the list below is closed over what the image lacks.
set -euo pipefail
cd "$(dirname "$0")/.."
grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude
WHEELS=(
  fastapi==0.165.0 starlette==1.10.0 pydantic==2.14.4 pydantic_core==2.50.5 pydantic-settings==2.16.3
  python-dotenv==1.2.4 annotated-types==0.8.0 typing-inspection==0.4.5 typing_extensions==4.16.0 anyio==4.16.0
  SQLAlchemy==2.1.9 greenlet uvicorn==0.54.0 httptools==0.9.0 websockets==17.4 watchfiles==1.3.0
  platformdirs==4.14.8 optuna==5.0.0 alembic==1.20.1 Mako==1.4.3 colorlog==6.12.0 pytest-timeout==2.4.0
  openai==3.57.0 jiter==0.19.0 distro sniffio==1.3.1 httpx2==2.16.2 httpcore2==2.16.2 truststore opentelemetry-api==1.45.2
)
rm -rf .whl && mkdir .whl
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
  --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d .whl "${WHEELS[@]}"
du -sh .whl
ls .whl
