"""`warcio check`, able to read br records: python tests/warciocheck.py FILE...

warcio 1.8.1 makes its brotli decompressor by setting an attribute on a
`brotli.Decompressor`, which brotli 1.2 (what Scrapy 2.19 and warcio 1.8.1
themselves require) does not allow: `warcio check` then dies on the first
record whose Content-Encoding is br. This registers a decompressor warcio
can use and runs warcio's own checker, unchanged otherwise.
"""

import sys

import brotli
from warcio.bufferedreaders import BufferedReader
from warcio.cli import main


class BrotliForWarcio:
    """What warcio's BufferedReader asks of a decompressor: decompress() and unused_data."""

    unused_data = None

    def __init__(self):
        self._decompressor = brotli.Decompressor()

    def decompress(self, data: bytes) -> bytes:
        return self._decompressor.process(data)


BufferedReader.DECOMPRESSORS["br"] = BrotliForWarcio

if __name__ == "__main__":
    sys.exit(main(["check", *sys.argv[1:]]))
