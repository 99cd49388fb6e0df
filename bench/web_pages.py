"""Benchmark of the workbench's pages: a review and a customer against a large register (issue 11).

    .venv/bin/python bench/web_pages.py --customers 1000000          # SQLite, built once under bench/out/
    .venv/bin/python bench/web_pages.py --customers 100000 --url postgresql://postgres@127.0.0.1/web_bench

Builds (once, cached) a register of N customers with 1.3 records each on average,
golden provenance, a service each and N/1000 open reviews with stored evidence, written
straight into the tables (the pages' queries only need their sizes and indexes, not the
matcher's work: bench/resolve_benchmark.py measures that). Then, through Flask's test
client with a logged-in steward (the whole request: session, CSRF-free GET, queries,
access-log write, template), times GET /customers/<id> and GET /reviews/<id> for
--samples random ids each and prints the median and the 95th percentile. Target: each
<= 300 ms at 1,000,000 customers.

Synthetic values only: names built from syllables, digits in the right shapes.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import statistics
import sys
import time
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.register import users  # noqa: E402
from pipeline.register.database import make_engine, migrate  # noqa: E402
from pipeline.web import create_app  # noqa: E402

OUT = Path(__file__).resolve().parent / "out"
PASSWORD = "benchmark password 1"
SYLLABLES = ["ka", "le", "mi", "no", "pu", "ri", "sa", "te", "va", "ho", "ju", "ne"]
CHUNK = 50_000


def _name(rng: random.Random, parts: int) -> str:
    return "".join(rng.choice(SYLLABLES) for _ in range(parts)).capitalize()


def build(engine: sa.Engine, customers: int, seed: int = 5) -> None:
    rng = random.Random(seed)
    now = dt.datetime(2026, 11, 25, 3, tzinfo=dt.timezone.utc)
    naive = engine.dialect.name == "sqlite"
    stamp = now.replace(tzinfo=None) if naive else now
    with engine.begin() as connection:
        file_id = connection.execute(sa.text(
            "INSERT INTO intake_file (channel, file_name, checksum, size_bytes, status, records_read, "
            "records_accepted, records_resent, records_quarantined, loaded_at, run_id) VALUES "
            "('web', 'web_bench.jsonl', :c, 1, 'loaded', 0, 0, 0, 0, :t, 'bench') RETURNING intake_file_id"),
            {"c": "b" * 64, "t": stamp}).scalar_one()
    pk = 0
    for start in range(1, customers + 1, CHUNK):
        ids = range(start, min(start + CHUNK, customers + 1))
        cust, recs, prov, serv = [], [], [], []
        for cid in ids:
            first, last = _name(rng, 2), _name(rng, 3)
            street = f"{_name(rng, 3)}katu {rng.randint(1, 99)}"
            postal, phone = f"{rng.randint(0, 99999):05d}", f"+35840{rng.randint(0, 9999999):07d}"
            cust.append({"customer_id": cid, "first_names": first, "last_name": last, "street_address": street,
                         "postal_code": postal, "city": "Tampere", "phone": phone, "identity_verified": False,
                         "created_at": stamp, "updated_at": stamp})
            first_pk = pk + 1
            for n in range(1 if rng.random() < 0.7 else 2):
                pk += 1
                recs.append({"source_record_pk": pk, "channel": "web", "source_record_id": f"W-{pk:09d}",
                             "intake_file_id": file_id, "record_number": pk, "customer_id": cid,
                             "observed_at": stamp, "match_method": "new" if n == 0 else "probabilistic",
                             "first_names": first, "last_name": last, "street_address": street,
                             "postal_code": postal, "city": "Tampere", "phone": phone, "product": "electricity",
                             "identity_verified": False, "quality_flags": "", "loaded_at": stamp, "run_id": "bench"})
            prov.append({"customer_id": cid, "name_record_pk": first_pk, "address_record_pk": first_pk,
                         "phone_record_pk": first_pk})
            serv.append({"customer_id": cid, "product": "electricity", "metering_point": None,
                         "first_seen": stamp, "last_seen": stamp})
        with engine.begin() as connection:
            connection.execute(sa.text(
                "INSERT INTO customer (customer_id, first_names, last_name, street_address, postal_code, city, "
                "phone, identity_verified, created_at, updated_at) VALUES (:customer_id, :first_names, :last_name, "
                ":street_address, :postal_code, :city, :phone, :identity_verified, :created_at, :updated_at)"), cust)
            connection.execute(sa.text(
                "INSERT INTO source_record (source_record_pk, channel, source_record_id, intake_file_id, "
                "record_number, customer_id, observed_at, match_method, first_names, last_name, street_address, "
                "postal_code, city, phone, product, identity_verified, quality_flags, loaded_at, run_id) VALUES "
                "(:source_record_pk, :channel, :source_record_id, :intake_file_id, :record_number, :customer_id, "
                ":observed_at, :match_method, :first_names, :last_name, :street_address, :postal_code, :city, "
                ":phone, :product, :identity_verified, :quality_flags, :loaded_at, :run_id)"), recs)
            connection.execute(sa.text(
                "INSERT INTO golden_provenance (customer_id, name_record_pk, address_record_pk, phone_record_pk) "
                "VALUES (:customer_id, :name_record_pk, :address_record_pk, :phone_record_pk)"), prov)
            connection.execute(sa.text(
                "INSERT INTO service (customer_id, product, metering_point, first_seen, last_seen) VALUES "
                "(:customer_id, :product, :metering_point, :first_seen, :last_seen)"), serv)
        print(f"  built {ids[-1]:,} customers, {pk:,} records", flush=True)
    evidence = json.dumps({"reason": "uncertain", "comparisons": {
        "first_name": ["Exact match on first_name", 7.6], "last_name": ["Exact match on last_name", 8.3],
        "address": ["same postal code only", 4.3], "phone": ["All other comparisons", -3.1]}})
    reviews = []
    for _ in range(max(10, customers // 1000)):
        a, b = rng.randint(1, pk), rng.randint(1, pk)
        reviews.append({"l": a, "r": b, "e": evidence, "t": stamp})
    with engine.begin() as connection:
        connection.execute(sa.text(
            "INSERT INTO review_queue (left_source_record_pk, right_source_record_pk, left_customer_id, "
            "right_customer_id, probability, evidence, status, created_at) SELECT :l, :r, "
            "(SELECT customer_id FROM source_record WHERE source_record_pk = :l), "
            "(SELECT customer_id FROM source_record WHERE source_record_pk = :r), 0.9, :e, 'open', :t"), reviews)
        if engine.dialect.name == "postgresql":
            connection.exec_driver_sql("SELECT setval(pg_get_serial_sequence('customer', 'customer_id'), "
                                       "(SELECT MAX(customer_id) FROM customer))")
            connection.exec_driver_sql("ANALYZE")
        else:
            connection.exec_driver_sql("ANALYZE")


def timed(client, paths: list[str]) -> list[float]:
    out = []
    for path in paths:
        started = time.perf_counter()
        response = client.get(path)
        out.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, f"{path}: {response.status_code}"
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--samples", type=int, default=50)
    parser.add_argument("--url", default=None, help="a PostgreSQL database to (re)build; default a cached SQLite file")
    args = parser.parse_args()
    if args.url:
        engine = make_engine(args.url)
        migrate(engine)
        fresh = sa.inspect(engine).has_table("customer") and not engine.connect().execute(
            sa.text("SELECT 1 FROM customer LIMIT 1")).first()
    else:
        OUT.mkdir(exist_ok=True)
        path = OUT / f"web-bench-{args.customers}.db"
        fresh = not path.exists()
        engine = make_engine(f"sqlite:///{path}")
        migrate(engine)
    if fresh:
        started = time.perf_counter()
        build(engine, args.customers)
        print(f"register built in {time.perf_counter() - started:.0f} s")
    with engine.begin() as connection:
        connection.exec_driver_sql("DELETE FROM app_user WHERE name = 'bench.steward'")
    users.add_user(engine, "bench.steward", "steward", PASSWORD)
    app = create_app(engine, secret_key="bench-" + "k" * 40, secure_cookies=False)
    client = app.test_client()
    page = client.get("/login").get_data(as_text=True)
    import re
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    assert client.post("/login", data={"name": "bench.steward", "password": PASSWORD,
                                       "csrf_token": csrf}).status_code == 302
    with engine.connect() as connection:
        top = connection.execute(sa.text("SELECT MAX(customer_id) FROM customer")).scalar_one()
        review_ids = [r for (r,) in connection.execute(sa.text("SELECT review_id FROM review_queue"))]
    rng = random.Random(1)
    customers = [f"/customers/{rng.randint(1, top)}" for _ in range(args.samples)]
    reviews = [f"/reviews/{rng.choice(review_ids)}" for _ in range(args.samples)]
    timed(client, customers[:3] + reviews[:3])  # warm the caches and the templates
    for name, paths in (("customer page", customers), ("review page", reviews),
                        ("review list", ["/reviews"] * 10), ("overview", ["/overview"] * 5)):
        ms = sorted(timed(client, paths))
        p95 = ms[min(len(ms) - 1, int(0.95 * len(ms)))]
        print(f"{engine.dialect.name} {top:,} customers: {name}: median {statistics.median(ms):.1f} ms, "
              f"p95 {p95:.1f} ms ({len(ms)} requests)")
    engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
