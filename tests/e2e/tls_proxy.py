"""A TLS terminator in front of a plaintext broker, for weir's TLS tests
(tansu 0.6 does not serve TLS itself). Standard library only.

Usage: tls_proxy.py LISTEN_PORT BROKER_PORT CERT KEY [CLIENT_CA]
With CLIENT_CA, clients must show a certificate it signed (mutual TLS).
Prints "listening" once it accepts connections.
"""

import asyncio
import ssl
import sys


async def pipe(reader, writer):
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, ssl.SSLError):
        pass
    finally:
        writer.close()


async def main():
    listen, broker, cert, key = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    if len(sys.argv) > 5:
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(sys.argv[5])

    async def handle(client_reader, client_writer):
        try:
            broker_reader, broker_writer = await asyncio.open_connection("127.0.0.1", broker)
        except OSError:
            client_writer.close()
            return
        await asyncio.gather(pipe(client_reader, broker_writer), pipe(broker_reader, client_writer))

    server = await asyncio.start_server(handle, "127.0.0.1", listen, ssl=context)
    print("listening", flush=True)
    async with server:
        await server.serve_forever()


asyncio.run(main())
