#!/usr/bin/env python3
"""Independent Kafka client for weir's end-to-end tests.

The Rust harness runs this as a subprocess so that what weir produces and
commits is checked by a client that shares no code with weir (aiokafka, not
librdkafka). It reads JSON on stdin and writes JSON lines on stdout; anything
for a human goes to stderr.

Byte fields (keys, values, header values) use one encoding, input and output:
JSON null is "no bytes", a string is its UTF-8 bytes, {"$base64": "..."} is
arbitrary bytes. On input any other JSON value stands for its compact
serialization; on output valid UTF-8 is a string, anything else is base64.

Exit codes: 0 success, 1 broker trouble or too few records, 2 bad input.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import json
import logging
import sys
import time
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError, for_code

BASE64_KEY = "$base64"


class InputError(Exception):
    """Malformed input from the caller: exit code 2."""


class Failure(Exception):
    """The broker misbehaved or did not deliver in time: exit code 1."""


# --- byte-field encoding ----------------------------------------------------


def decode_bytes(field: Any, what: str) -> bytes | None:
    if field is None:
        return None
    if isinstance(field, str):
        return field.encode("utf-8")
    if isinstance(field, dict) and BASE64_KEY in field:
        encoded = field[BASE64_KEY]
        # An object mixing "$base64" with other keys is a caller's mistake,
        # not data: refuse it rather than guess which reading was meant.
        if len(field) != 1 or not isinstance(encoded, str):
            raise InputError(f'{what}: {{"$base64": ...}} must be the only key and a string')
        try:
            return base64.b64decode(encoded, validate=True)
        except binascii.Error as err:
            raise InputError(f"{what}: invalid base64: {err}") from err
    return json.dumps(field, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def encode_bytes(data: bytes | None) -> Any:
    if data is None:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return {BASE64_KEY: base64.b64encode(data).decode("ascii")}


def decode_headers(field: Any, what: str) -> list[tuple[str, bytes | None]]:
    if field is None:
        return []
    if isinstance(field, dict):
        pairs = list(field.items())
    elif isinstance(field, list):
        pairs = []
        for i, pair in enumerate(field):
            if not (isinstance(pair, list) and len(pair) == 2):
                raise InputError(f"{what}: header {i} is not a [name, value] pair")
            pairs.append((pair[0], pair[1]))
    else:
        raise InputError(f"{what}: headers must be an object or a list of [name, value] pairs")
    headers = []
    for name, value in pairs:
        if not isinstance(name, str):
            raise InputError(f"{what}: header name {name!r} is not a string")
        headers.append((name, decode_bytes(value, f"{what}: header {name!r}")))
    return headers


def encode_headers(headers: Any) -> list[list[Any]]:
    return [[name, encode_bytes(value)] for name, value in headers or ()]


def describe(err: BaseException, timeout: float) -> str:
    if isinstance(err, asyncio.TimeoutError):
        return f"no answer within {timeout}s"
    return f"{type(err).__name__}: {err}"


def emit(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, ensure_ascii=False) + "\n")
    sys.stdout.flush()


# --- subcommands --------------------------------------------------------------


async def create_topics(args: argparse.Namespace) -> None:
    # Refused connections are expected while the broker starts; the failure
    # message carries the last error if it never answers.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    deadline = time.monotonic() + args.timeout
    pending = list(dict.fromkeys(args.topics))
    last_error: Exception | None = None
    while pending:
        if time.monotonic() > deadline:
            raise Failure(f"topics {pending} not created within {args.timeout}s: {last_error}")
        admin = AIOKafkaAdminClient(bootstrap_servers=args.bootstrap, request_timeout_ms=5000)
        try:
            await admin.start()
            response = await admin.create_topics(
                [NewTopic(t, num_partitions=args.partitions, replication_factor=1) for t in pending]
            )
            for topic_error in response.topic_errors:
                topic, code = topic_error[0], topic_error[1]
                if code == 0 or for_code(code) is TopicAlreadyExistsError:
                    continue
                message = topic_error[2] if len(topic_error) > 2 else None
                raise Failure(f"creating topic {topic!r}: {for_code(code).__name__} {message or ''}")
            # CreateTopics may answer before metadata shows the topic; the
            # caller's very next step is usually to produce to it.
            described = await admin.describe_topics(pending)
            ready = {t["topic"] for t in described if t["error_code"] == 0 and t["partitions"]}
            pending = [t for t in pending if t not in ready]
        except (KafkaError, OSError) as err:
            last_error = err
        finally:
            await admin.close()
        if pending:
            await asyncio.sleep(0.2)


def read_produce_input() -> list[dict[str, Any]]:
    records = []
    for lineno, line in enumerate(sys.stdin, start=1):
        if not line.strip():
            continue
        what = f"stdin line {lineno}"
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as err:
            raise InputError(f"{what}: invalid JSON: {err}") from err
        if not isinstance(obj, dict):
            raise InputError(f"{what}: expected a JSON object")
        unknown = set(obj) - {"key", "value", "headers", "partition"}
        if unknown:
            raise InputError(f"{what}: unknown fields {sorted(unknown)}")
        partition = obj.get("partition")
        if partition is not None and (isinstance(partition, bool) or not isinstance(partition, int)):
            raise InputError(f"{what}: partition must be an integer")
        records.append(
            {
                "key": decode_bytes(obj.get("key"), f"{what}: key"),
                "value": decode_bytes(obj.get("value"), f"{what}: value"),
                "headers": decode_headers(obj.get("headers"), what),
                "partition": partition,
            }
        )
    return records


async def produce(args: argparse.Namespace) -> None:
    records = read_produce_input()
    producer = AIOKafkaProducer(
        bootstrap_servers=args.bootstrap,
        # Records past Kafka's default 1 MiB limit, for topics that allow them.
        max_request_size=16 << 20,
        acks="all",
        enable_idempotence=False,
        request_timeout_ms=int(args.timeout * 1000),
    )
    try:
        await asyncio.wait_for(producer.start(), args.timeout)
        wanted = {r["partition"] for r in records if r["partition"] is not None}
        if wanted:
            existing = await asyncio.wait_for(producer.partitions_for(args.topic), args.timeout)
            if not wanted <= existing:
                raise Failure(f"topic {args.topic!r} has no partitions {sorted(wanted - existing)}")
        # Enqueue in input order, then wait: per-partition order is kept and
        # records are batched instead of one round trip each.
        futures = [
            await producer.send(
                args.topic,
                value=r["value"],
                key=r["key"],
                partition=r["partition"],
                headers=r["headers"],
            )
            for r in records
        ]
        await asyncio.wait_for(asyncio.gather(*futures), args.timeout)
    except (KafkaError, OSError, asyncio.TimeoutError) as err:
        raise Failure(f"producing to {args.topic!r}: {describe(err, args.timeout)}") from err
    finally:
        await producer.stop()
    emit({"produced": len(records)})


async def assign_all_partitions(bootstrap: str, topics: list[str], deadline: float) -> list[TopicPartition]:
    # The consumer's own metadata lists only what it subscribed to (and
    # `topics()` updates a copy): ask the admin API for the partitions.
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000)
    await admin.start()
    try:
        while True:
            described = await admin.describe_topics(topics)
            partitions = {t["topic"]: [p["partition"] for p in t["partitions"]] for t in described if t["error_code"] == 0}
            missing = [t for t in topics if not partitions.get(t)]
            if not missing:
                return [TopicPartition(t, p) for t in topics for p in sorted(partitions[t])]
            if time.monotonic() > deadline:
                raise Failure(f"topics {missing} have no partitions in the broker's metadata")
            await asyncio.sleep(0.2)
    finally:
        await admin.close()


async def consume(args: argparse.Namespace) -> None:
    if args.count is None and args.idle is None:
        raise InputError("consume needs --count, --idle or both")
    started = time.monotonic()
    deadline = started + args.timeout
    consumer = AIOKafkaConsumer(
        bootstrap_servers=args.bootstrap,
        max_partition_fetch_bytes=16 << 20,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level=args.isolation,
    )
    got = 0
    # A record is its (topic, partition, offset): each is printed and
    # counted once, so a reader that fetches a range again (after a broker
    # restart, or a position reset) cannot count a record twice, while
    # weir's own duplicates, which have offsets of their own, still count.
    seen: set[tuple[str, int, int]] = set()
    try:
        await asyncio.wait_for(consumer.start(), args.timeout)
        tps = await assign_all_partitions(args.bootstrap, list(dict.fromkeys(args.topic)), deadline)
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        last_record = time.monotonic()
        while args.count is None or got < args.count:
            now = time.monotonic()
            if now >= deadline:
                break
            if args.idle is not None and now - last_record >= args.idle:
                break
            wait = deadline - now
            if args.idle is not None:
                wait = min(wait, args.idle - (now - last_record))
            batches = await consumer.getmany(timeout_ms=max(1, int(min(wait, 0.5) * 1000)))
            for records in batches.values():
                for r in records:
                    if args.count is not None and got >= args.count:
                        break
                    if (r.topic, r.partition, r.offset) in seen:
                        continue
                    seen.add((r.topic, r.partition, r.offset))
                    emit(
                        {
                            "topic": r.topic,
                            "partition": r.partition,
                            "offset": r.offset,
                            "timestamp": r.timestamp,
                            "key": encode_bytes(r.key),
                            "value": encode_bytes(r.value),
                            "headers": encode_headers(r.headers),
                        }
                    )
                    got += 1
                    last_record = time.monotonic()
    except (KafkaError, OSError, asyncio.TimeoutError) as err:
        raise Failure(f"consuming {args.topic}: {describe(err, args.timeout)} ({got} records read)") from err
    finally:
        await consumer.stop()
    if args.count is not None and got < args.count:
        why = f"no record for {args.idle}s" if args.idle is not None and time.monotonic() < deadline else f"timeout {args.timeout}s"
        raise Failure(f"expected {args.count} records from {args.topic}, got {got} ({why})")


async def committed(args: argparse.Namespace) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=args.bootstrap, request_timeout_ms=int(args.timeout * 1000))
    try:
        await asyncio.wait_for(admin.start(), args.timeout)
        described = await admin.describe_topics([args.topic])
        topic = next((t for t in described if t["topic"] == args.topic), None)
        if topic is None or topic["error_code"] != 0:
            code = topic["error_code"] if topic else None
            raise Failure(f"topic {args.topic!r} not found (error {code})")
        partitions = sorted(p["partition"] for p in topic["partitions"])
        offsets = await admin.list_consumer_group_offsets(
            args.group, partitions=[TopicPartition(args.topic, p) for p in partitions]
        )
    except (KafkaError, OSError, asyncio.TimeoutError) as err:
        raise Failure(f"committed offsets of group {args.group!r}: {describe(err, args.timeout)}") from err
    finally:
        await admin.close()
    result = {}
    for p in partitions:
        meta = offsets.get(TopicPartition(args.topic, p))
        result[str(p)] = meta.offset if meta is not None and meta.offset >= 0 else None
    emit(result)


# --- CLI ----------------------------------------------------------------------


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    def command(name: str, help_text: str, default_timeout: float = 30.0) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument("--bootstrap", required=True, help="HOST:PORT of a broker")
        p.add_argument("--timeout", type=float, default=default_timeout, help="seconds before giving up")
        return p

    p = command("create-topics", "Create topics, ignoring ones that exist; retries until the broker answers.")
    p.add_argument("--partitions", type=int, default=1)
    p.add_argument("topics", nargs="+", metavar="TOPIC")
    p.set_defaults(run=create_topics)

    p = command("produce", "Produce JSON lines from stdin (key, value, headers, partition); acks=all.")
    p.add_argument("--topic", required=True)
    p.set_defaults(run=produce)

    p = command("consume", "Read topics from the beginning without a consumer group; one JSON line per record.")
    p.add_argument("--topic", required=True, action="append", help="repeat for several topics")
    p.add_argument("--count", type=int, help="stop after this many records; fail if fewer arrive")
    p.add_argument("--idle", type=float, help="stop after this many seconds without a new record")
    p.add_argument("--isolation", choices=["read_uncommitted", "read_committed"], default="read_uncommitted")
    p.set_defaults(run=consume)

    p = command("committed", "Print a group's committed offset per partition of a topic (null if none).")
    p.add_argument("--group", required=True)
    p.add_argument("--topic", required=True)
    p.set_defaults(run=committed)

    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    sys.stdin.reconfigure(encoding="utf-8")
    sys.stdout.reconfigure(encoding="utf-8")
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="kafka_client: %(name)s: %(message)s")
    # Logs "topic not found" as an error on every metadata retry; our own
    # message says it once.
    logging.getLogger("aiokafka.cluster").setLevel(logging.CRITICAL)
    try:
        asyncio.run(args.run(args))
    except InputError as err:
        print(f"kafka_client {args.command}: bad input: {err}", file=sys.stderr)
        return 2
    except Failure as err:
        print(f"kafka_client {args.command}: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
