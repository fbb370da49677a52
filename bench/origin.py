#!/usr/bin/env python3
"""The origin's design, kept as the benchmark's Python contender.

One message at a time: an aiokafka consumer hands over a record, a pydantic
model `{id: int, text: str}` checks its value, an aiokafka producer sends it
to the output (or, when the check fails, to the dead-letter topic) and the
send is awaited before the next record is taken. At-least-once like weir:
the offset of a record is committed only after its send was acknowledged,
in the background every second and once more on SIGTERM.

Usage: origin.py --bootstrap HOST:PORT --input T --output T --dead-letter T --group G
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import time

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from pydantic import BaseModel, ValidationError

COMMIT_EVERY = 1.0


class Order(BaseModel):
    id: int
    text: str


async def run(args: argparse.Namespace) -> None:
    consumer = AIOKafkaConsumer(
        args.input,
        bootstrap_servers=args.bootstrap,
        group_id=args.group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    producer = AIOKafkaProducer(bootstrap_servers=args.bootstrap, acks="all")
    await consumer.start()
    await producer.start()
    done: dict[TopicPartition, int] = {}
    last_commit = time.monotonic()

    async def process() -> None:
        nonlocal last_commit
        async for msg in consumer:
            try:
                Order.model_validate_json(msg.value)
                topic, headers = args.output, msg.headers
            except ValidationError as err:
                topic = args.dead_letter
                headers = list(msg.headers) + [("weir.error.reason", str(err).encode())]
            await producer.send_and_wait(
                topic, msg.value, key=msg.key, headers=headers, timestamp_ms=msg.timestamp
            )
            done[TopicPartition(msg.topic, msg.partition)] = msg.offset + 1
            if time.monotonic() - last_commit >= COMMIT_EVERY:
                await consumer.commit(dict(done))
                last_commit = time.monotonic()

    task = asyncio.ensure_future(process())
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, task.cancel)
    loop.add_signal_handler(signal.SIGINT, task.cancel)
    try:
        await task
    except asyncio.CancelledError:
        pass
    finally:
        if done:
            await consumer.commit(dict(done))
        await producer.stop()
        await consumer.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for name in ("--bootstrap", "--input", "--output", "--dead-letter", "--group"):
        parser.add_argument(name, required=True)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
