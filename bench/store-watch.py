#!/usr/bin/env python3
"""What an open change stream costs the store per inserted event (issue 13's bound).

Starts its own secantusd-rs on a free port, then inserts 200,000 event-shaped documents
(insert_many of 10,000, with the events' TTL index) in each setting, twice, and prints
docs/s and the store's CPU per document:
  plain        no change stream open
  same-db      a database-wide change stream with the read model's $match (events filtered out)
  other-db     the same change stream on another database
  one-coll     a change stream on one other collection of the same database
  no-ttl       no change stream, no TTL index
Usage: bench/store-watch.py   (needs secantusd-rs and pymongo: pip install pymongo)
"""
import datetime
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time

import bson
import pymongo
from bson.raw_bson import RawBSONDocument

N_BATCHES, BATCH = 20, 10_000


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def cpu_seconds(pid):
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


def batches(now):
    out = []
    for b in range(1, N_BATCHES + 1):
        out.append([
            RawBSONDocument(bson.encode({
                "_id": (b << 20) | i, "timestamp": now, "type": "page.view",
                "context": {"neighborhood": "p", "project": "proj%03d" % (i % 100),
                            "tool": "wiki", "visitor": "0123456789abcdef"},
                "extra": None, "n": BATCH, "w": now}))
            for i in range(BATCH)])
    return out


def main():
    work = tempfile.mkdtemp(prefix="store-watch.")
    port = free_port()
    store = subprocess.Popen(
        ["secantusd-rs", "--host", "127.0.0.1", "--port", str(port), "--storage-path",
         f"{work}/store", "--cache-size", "1G", "--log-level", "WARNING"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    uri = f"mongodb://127.0.0.1:{port}/?directConnection=true"
    try:
        client = pymongo.MongoClient(uri, serverSelectionTimeoutMS=30_000)
        client.admin.command("ping")
        db = client["watch_ab"]
        docs = batches(datetime.datetime.now(datetime.timezone.utc))
        match = [{"$match": {"$or": [
            {"ns.coll": {"$in": ["users", "projects", "tools"]}},
            {"operationType": {"$in": ["dropDatabase", "invalidate"]}}]}},
            {"$project": {"fullDocument": 0}}]

        def watcher(kind, stop):
            c = pymongo.MongoClient(uri)
            target = {"same-db": c["watch_ab"], "other-db": c["watch_other"],
                      "one-coll": c["watch_ab"]["users"]}[kind]
            pipeline = [{"$project": {"fullDocument": 0}}] if kind == "one-coll" else match
            with target.watch(pipeline, max_await_time_ms=500) as s:
                while not stop.is_set():
                    s.try_next()

        for kind in ["plain", "same-db", "other-db", "one-coll", "no-ttl"] * 2:
            db.drop_collection("events")
            coll = db["events"]
            if kind != "no-ttl":
                coll.create_index("timestamp", expireAfterSeconds=400 * 86400)
            stop, thread = threading.Event(), None
            if kind in ("same-db", "other-db", "one-coll"):
                thread = threading.Thread(target=watcher, args=(kind, stop))
                thread.start()
                time.sleep(1)
            t, c = time.time(), cpu_seconds(store.pid)
            for b in docs:
                coll.insert_many(b, ordered=False)
            elapsed, used = time.time() - t, cpu_seconds(store.pid) - c
            n = N_BATCHES * BATCH
            print(f"{kind:9} {n / elapsed:9,.0f} docs/s   store CPU {used / n * 1e6:5.1f} µs/doc")
            stop.set()
            if thread:
                thread.join()
    finally:
        store.terminate()
        store.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
