"""The floor under any HL7 pipeline that stores each message before it answers: parse, store raw, commit, ACK.

`python -m bench.hl7_floor --port P --threads T` runs the product's MLLP server (framing, connections,
database threads) with a handler that does only what "stored before acknowledged" needs: `hl7.parse`,
one prepared INSERT of the raw message, COMMIT, and an AA echoing MSH-10. No mapping, no identity,
nothing applied, no audit entry. Whatever this listener reaches bounds what the real pipeline can reach
on the same machine, in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import signal
import uuid

import hl7

# Every NOT NULL column of the inbound log, as the real pipeline fills them; status `received`, so the
# rows read as stored and never applied, which they are.
INSERT = """
    INSERT INTO integrations_inboundmessage
        (uuid, created_at, updated_at, protocol, transport, sender, peer, received_at, control_id,
         message_type, version, raw, patient_identifiers, status, error_code, error_location, error, attempts)
    VALUES (%s, %s, %s, 'hl7v2', 'mllp', %s, %s, %s, %s, %s, %s, %s, '', 'received', '', '', '', 0)
"""


def floor_receive(payload: bytes, *, transport: str, peer: str = "") -> bytes:
    """Parse, store raw and commit; answer AA. `transport` is accepted as the listener passes it."""
    from django.db import connection, transaction

    message = hl7.parse(payload, encoding="utf-8")
    header = message.segment("MSH")
    control_id, version = str(header[10]), str(header[12])
    sender = f"{header[3]}^{header[4]}"
    now = dt.datetime.now(dt.UTC)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            INSERT, [uuid.uuid4().hex, now, now, sender, peer[:100], now, control_id, str(header[9]), version, payload]
        )
    stamp = now.strftime("%Y%m%d%H%M%S")
    return (
        f"MSH|^~\\&|HCRM|HCRM|{header[3]}|{header[4]}|{stamp}||ACK|{control_id}|P|{version}\rMSA|AA|{control_id}\r"
    ).encode()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--threads", type=int, default=2)
    options = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hcrm.settings")
    import django

    django.setup()
    from integrations.hl7v2.mllp import MLLPServer

    server = MLLPServer(port=options.port, handler=floor_receive, threads=options.threads, reuse_port=True)

    async def serve() -> None:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, server.request_stop)
        await server.run(ready=lambda port: print(f"floor listener on {port} (pid {os.getpid()})", flush=True))

    asyncio.run(serve())


if __name__ == "__main__":
    main()
