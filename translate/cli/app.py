"""translate-app [--models DIR] [--host 127.0.0.1] [--port 7860] [--share]

Starts the Gradio app (apps/translate_app.py) over the exported generators in DIR (default
checkpoints/: run folders' G.safetensors, G_A/G_B pairs, imported reference models). It listens on
127.0.0.1 unless --host says otherwise and opens a public share link only with --share.
"""

from __future__ import annotations

import argparse
import errno
import socket
import sys
from pathlib import Path

from translate.cli.common import OneLineParser, cli_entry, info
from translate.errors import UsageError

PROG = "translate-app"


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog=PROG, description="Serve exported generators in a Gradio app (local only "
                                                       "unless told otherwise).")
    p.add_argument("--models", default="checkpoints", help="folder of exported models (default: checkpoints)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine "
                                                      "only; 0.0.0.0 opens it to the network)")
    p.add_argument("--port", type=int, default=7860, help="port (default 7860)")
    p.add_argument("--share", action="store_true", help="also open a public link through Gradio's share servers")
    p.add_argument("--max-pixels", type=int, default=1024 * 1024,
                   help="larger uploads are downscaled to this many pixels first (default 1048576 = 1024x1024)")
    p.add_argument("--cache-size", type=int, default=2, help="models kept loaded at once (default 2)")
    p.add_argument("--examples", default=None, metavar="DIR",
                   help="folder for the example pictures (rendered on first start; default ~/.cache/translate/app-examples)")
    p.add_argument("--device", default="cpu", help="cpu, cuda or auto (default cpu)")
    return p


def check_address(host: str, port: int) -> None:
    """UsageError unless the app could listen on (host, port): a port in use, or a host that is not an
    address of this machine, would otherwise fail deep inside the web server."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except socket.gaierror as e:
        raise UsageError(f"--host {host}: {e.strerror}; give a name or address of this machine, e.g. 127.0.0.1") from None
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the web server binds
        try:
            probe.bind(address)
        except OSError as e:
            if e.errno == errno.EADDRINUSE:
                raise UsageError(f"port {port} on {host} is in use (another app?); pick another with --port") from None
            raise UsageError(f"cannot listen on {host}:{port} ({e.strerror}); give an address of this machine "
                             "with --host, e.g. 127.0.0.1") from None


@cli_entry(PROG)
def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if not 0 < args.port < 65536:
        raise UsageError(f"--port must be between 1 and 65535, got {args.port}")
    if Path(args.models).exists() and not Path(args.models).is_dir():
        raise UsageError(f"--models {args.models} is a file; pass a folder of models, e.g. the one that holds it: "
                         f"--models {Path(args.models).parent}")
    if not Path(args.models).is_dir():
        raise UsageError(f"models folder {args.models} not found; train a model first or pass --models DIR")
    check_address(args.host, args.port)
    from translate.train.precision import resolve_device

    device = str(resolve_device(args.device))  # a missing GPU or a typo: one line now, not at each translation
    try:
        from apps.translate_app import launch
    except ImportError as e:
        raise UsageError(f"the app's code (apps/translate_app.py) cannot be imported ({e}); run from a source "
                         "checkout or install the package with its apps") from None
    info(f"{PROG}: models from {args.models}; http://{args.host}:{args.port}"
         + (" (and a public share link)" if args.share else ""))
    launch(args.models, host=args.host, port=args.port, share=args.share, max_pixels=args.max_pixels,
           cache_size=args.cache_size, examples_dir=args.examples, device=device, log=info)
    return 0


if __name__ == "__main__":
    sys.exit(main())
