"""Fill an empty database with a small, realistic ISP and the demo users noc, manager and admin.

Deterministic: the same --seed and --customers give the same customers, addresses and
lease history (relative to the moment the command runs). Rows are written with
bulk_create, so a few hundred customers and their ~90 days of leases take seconds.
"""

from __future__ import annotations

import heapq
import ipaddress
import random
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import Group, User
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from django.test import override_settings
from django.utils import timezone

from abusedesk.roles import ADMIN, MANAGER, NOC
from cases.demo import seed_demo_ladder, seed_demo_reports
from cases.models import Policy
from customers.models import (
    Allocation,
    AllocationChange,
    AllocationSource,
    Contact,
    Customer,
    CustomerKind,
)

ACTOR_LABEL = "seed_demo"
DEMO_USERS = ((NOC, "NOC", "Operator"), (MANAGER, "Desk", "Manager"), (ADMIN, "Desk", "Admin"))

FIRST_NAMES = [
    "Alice",
    "Bob",
    "Carol",
    "Dave",
    "Erin",
    "Frank",
    "Grace",
    "Heidi",
    "Ivan",
    "Judy",
    "Karl",
    "Lena",
    "Mallory",
    "Niaj",
    "Olivia",
    "Peggy",
    "Quentin",
    "Rupert",
    "Sybil",
    "Trent",
    "Ursula",
    "Victor",
    "Wendy",
    "Xavier",
    "Yvonne",
    "Zoltan",
    "Amira",
    "Bruno",
    "Chloe",
    "Dmitri",
    "Elif",
    "Farid",
    "Greta",
    "Hiro",
    "Ines",
    "Jonas",
    "Kemal",
    "Leila",
    "Marco",
    "Nora",
    "Oskar",
    "Priya",
    "Rosa",
    "Sven",
    "Tara",
    "Umar",
    "Vera",
    "Wim",
    "Yara",
]
LAST_NAMES = [
    "Smith",
    "Jones",
    "Garcia",
    "Müller",
    "Rossi",
    "Nowak",
    "Silva",
    "Kowalski",
    "Novak",
    "Hansen",
    "Jensen",
    "Martin",
    "Bernard",
    "Dubois",
    "Lambert",
    "Fischer",
    "Weber",
    "Becker",
    "Schulz",
    "Moreau",
    "Laurent",
    "Costa",
    "Ferreira",
    "Andersson",
    "Nilsson",
    "Larsen",
    "Horvat",
    "Popescu",
    "Ivanova",
    "Petrov",
    "Yilmaz",
    "Kaya",
    "Haddad",
    "Okafor",
    "Mensah",
    "Tanaka",
    "Sato",
    "Kim",
    "Park",
    "Nguyen",
    "Tran",
    "Singh",
    "Patel",
    "Khan",
    "O'Brien",
    "Murphy",
]
BUSINESS_WORDS = [
    "Harbour",
    "North",
    "Granite",
    "Lantern",
    "Orchard",
    "Copper",
    "Summit",
    "Meadow",
    "Beacon",
    "Willow",
    "Falcon",
    "Atlas",
    "Cedar",
    "Riverside",
    "Quarry",
    "Pioneer",
    "Bluebell",
    "Kestrel",
    "Juniper",
    "Ember",
    "Tidewater",
    "Foxglove",
    "Highland",
    "Marble",
    "Saffron",
    "Thistle",
]
BUSINESS_TRADES = [
    "Hosting",
    "Dental Practice",
    "Bakery",
    "Logistics",
    "Architects",
    "Law Office",
    "Print Shop",
    "Veterinary Clinic",
    "Brewery",
    "Accountants",
    "Engineering",
    "Pharmacy",
    "Garage",
    "Hotel",
    "Florist",
    "Consulting",
]
MAIL_DOMAINS = ("example.net", "example.com", "example.org")

# Address plan: documentation ranges only (RFC 5737 / RFC 3849).
RESIDENTIAL_POOLS = ("198.51.100.0/25", "203.0.113.0/25")
# Lines behind carrier-grade NAT share these public addresses, each holding a block of source ports
# for a session; the pool itself is held by the ISP's own account.
CGNAT_PUBLIC = "198.51.100.128/28"
CGNAT_BLOCK_PORTS = 4096  # ports 1024-65535: 15 blocks per public address
CGNAT_ACCOUNT = "ISP-CGNAT"
RESELLER_BLOCK = "192.0.2.0/26"  # one hosting customer; a /29 inside it is reassigned to another
RESELLER_SUB = "192.0.2.8/29"
BUSINESS_BLOCKS = (("192.0.2.64/26", 30), ("192.0.2.128/25", 29), ("203.0.113.128/25", 30))
RESIDENTIAL_V6 = ipaddress.IPv6Network("2001:db8:8000::/33")  # a /56 per residential line
BUSINESS_V6 = ipaddress.IPv6Network("2001:db8:b000::/36")  # a /48 per business


@dataclass
class Counts:
    customers: int = 0
    contacts: int = 0
    allocations: int = 0
    leases: int = 0
    port_blocks: int = 0


class Command(BaseCommand):
    help = "Create demo customers, allocations with lease history, policies, and the users noc, manager, admin."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--password", help="Password for the three demo users (default: a random one, printed).")
        parser.add_argument(
            "--if-empty",
            action="store_true",
            help="When customers already exist, leave the data alone and only create demo users that are missing.",
        )
        parser.add_argument("--customers", type=int, default=300, help="How many customers (default 300).")
        parser.add_argument("--days", type=int, default=90, help="Days of lease history (default 90).")
        parser.add_argument("--seed", type=int, default=1, help="Random seed (default 1).")
        parser.add_argument("--no-reports", action="store_true", help="Customers and allocations only; no reports.")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["customers"] < 2:
            raise CommandError("--customers must be at least 2.")
        if options["days"] < 1:
            raise CommandError("--days must be at least 1.")
        existing = Customer.objects.count()
        if existing and not options["if_empty"]:
            raise CommandError(
                f"The database already has {existing} customers; seed_demo fills an empty one. "
                "Use --if-empty to keep them and only create missing demo users."
            )
        ensure_policies()  # first: the demo reports' intake reads its duplicate window
        if existing:
            self.stdout.write(f"Demo data is already there ({existing} customers); leaving it as it is.")
        else:
            counts = build_demo(
                n_customers=options["customers"], days=options["days"], rng=random.Random(options["seed"])
            )
            self.stdout.write(
                f"Created {counts.customers} customers, {counts.contacts} contacts and {counts.allocations} "
                f"allocations ({counts.leases} lease sessions and {counts.port_blocks} CGNAT port blocks over "
                f"{options['days']} days)."
            )
        self.make_users(options["password"], only_missing=options["if_empty"])
        if not existing and not options["no_reports"]:
            stored = seed_demo_reports(random.Random(options["seed"]))
            self.stdout.write(f"Received {stored} demo abuse reports (see the queue and the inbox).")
            # DNS look-ups are left to the running desk: a demo machine may have no resolver.
            with override_settings(ENRICHMENT_ENABLED=False):
                made = seed_demo_ladder(random.Random(options["seed"]), User.objects.get(username="manager"))
            where = settings.EMAIL_FILE_PATH if "filebased" in settings.EMAIL_BACKEND else "the mail backend"
            self.stdout.write(
                f"Walked {len(made)} customers up the ladder ({', '.join(sorted(made))}); the notices are in {where}."
            )

    def make_users(self, password: str | None, *, only_missing: bool) -> None:
        usernames = [name for name, _, _ in DEMO_USERS]
        present = set(User.objects.filter(username__in=usernames).values_list("username", flat=True))
        todo = [u for u in DEMO_USERS if not (only_missing and u[0] in present)]
        if not todo:
            self.stdout.write("Users noc, manager and admin already exist; their passwords are unchanged.")
            return
        password = password or secrets.token_urlsafe(12)
        with transaction.atomic():
            for username, first, last in todo:
                user, _ = User.objects.get_or_create(username=username)
                user.first_name, user.last_name = first, last
                user.email = user.email or f"{username}@isp.example"
                # All three may sign in to the Django admin: admins edit there; managers and
                # NOC staff look customers up (who held an IP when) with view-only permissions.
                user.is_staff = True
                user.is_active = True
                user.set_password(password)
                user.save()
                user.groups.add(Group.objects.get(name=username))
        names = ", ".join(u[0] for u in todo)
        self.stdout.write(f"Users {names} — password: {password}")


def ensure_policies() -> None:
    # The house defaults (Policy.default_for): admins change them in the admin, with an audit.
    for kind in CustomerKind.values:
        if not Policy.objects.filter(customer_kind=kind).exists():
            Policy.default_for(kind).save()


def _alloc(
    customer: Customer, network: Any, valid_from: datetime, valid_to: datetime | None, source: str, note: str = ""
) -> Allocation:
    net = network if not isinstance(network, str) else ipaddress.ip_network(network)
    # bulk_create skips Allocation.save(), which fills these two from the network.
    return Allocation(
        customer=customer,
        network=str(net),
        family=net.version,
        prefixlen=net.prefixlen,
        valid_from=valid_from,
        valid_to=valid_to,
        source=source,
        note=note,
        created_at=valid_from,
    )


def _lease_sessions(
    customers: list[Customer], pool: list[str], start: datetime, now: datetime, rng: random.Random
) -> list[tuple[Customer, str, datetime, datetime | None]]:
    """Sessions of each customer from start to now, each on an address of the pool that was free then."""
    wanted: list[tuple[datetime, int, datetime | None]] = []
    for index, _customer in enumerate(customers):
        at = start + timedelta(seconds=rng.randint(0, 36 * 3600))
        offline = rng.random() < 0.1  # some lines are down right now
        while at < now:
            # Sessions last from a few hours to a couple of weeks (router restarts, forced reconnects).
            length = timedelta(seconds=int(min(rng.lognormvariate(11.5, 1.0), 16 * 86400)) + 600)
            end: datetime | None = at + length
            if end >= now:
                end = None if not offline else now - timedelta(minutes=rng.randint(10, 600))
                if end is not None and end <= at:
                    break
            wanted.append((at, index, end))
            if end is None:
                break
            at = end + timedelta(seconds=rng.randint(5, 2 * 3600))
    wanted.sort(key=lambda w: (w[0], w[1]))

    last_ip: dict[int, str] = {}
    # Addresses whose session ends, in end order, so "free now" is cheap to keep up to date.
    busy: list[tuple[datetime, str]] = []
    free: set[str] = set(pool)
    out = []
    for at, index, end in wanted:
        while busy and busy[0][0] <= at:
            _, ip = heapq.heappop(busy)
            free.add(ip)
        if not free:
            continue  # pool exhausted at that moment: the session is refused, as a real BRAS would
        previous = last_ip.get(index)
        # DHCP and RADIUS pools usually hand a returning line its previous address.
        ip = previous if previous in free and rng.random() < 0.6 else rng.choice(sorted(free))
        free.discard(ip)
        if end is not None:
            heapq.heappush(busy, (end, ip))
        last_ip[index] = ip
        out.append((customers[index], ip, at, end))
    return out


def _pool_hosts(cidr: str) -> list[str]:
    return [str(h) for h in ipaddress.ip_network(cidr).hosts()]


@transaction.atomic
def build_demo(*, n_customers: int, days: int, rng: random.Random) -> Counts:
    now = timezone.now().replace(microsecond=0)
    start = now - timedelta(days=days)
    counts = Counts()
    n_business = max(2, n_customers // 5)
    n_residential = n_customers - n_business

    customers: list[Customer] = []
    contacts: list[Contact] = []
    for i in range(n_residential):
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        customer = Customer(
            account=f"R-{100001 + i}",
            name=f"{first} {last}",
            kind=CustomerKind.RESIDENTIAL,
            created_at=start - timedelta(days=rng.randint(30, 2000)),
        )
        customers.append(customer)
        local = f"{first}.{last}".lower().replace("'", "").replace("ü", "ue")
        contacts.append(
            Contact(customer=customer, email=f"{local}{i + 1}@{rng.choice(MAIL_DOMAINS)}", name=f"{first} {last}")
        )
    for i in range(n_business):
        name = f"{rng.choice(BUSINESS_WORDS)} {rng.choice(BUSINESS_TRADES)}"
        if i == 0:
            name = "Harbour Hosting"
        slug = name.lower().replace(" ", "-") + f"-{i + 1}"
        customer = Customer(
            account=f"B-{200001 + i}",
            name=name if i == 0 else f"{name} Ltd",
            kind=CustomerKind.BUSINESS,
            created_at=start - timedelta(days=rng.randint(60, 3000)),
        )
        customers.append(customer)
        contacts.append(Contact(customer=customer, email=f"abuse@{slug}.example", name="Abuse desk"))
        contacts.append(
            Contact(
                customer=customer, email=f"it@{slug}.example", name="IT contact", receives_notices=rng.random() < 0.5
            )
        )
    pool_owner = Customer(
        account=CGNAT_ACCOUNT,
        name="CGNAT pool (shared public addresses)",
        kind=CustomerKind.BUSINESS,
        created_at=start - timedelta(days=3000),
    )
    customers.append(pool_owner)
    contacts.append(Contact(customer=pool_owner, email="noc@isp.example", name="NOC", receives_notices=False))
    Customer.objects.bulk_create(customers)
    for contact in contacts:
        contact.customer_id = contact.customer.pk
    Contact.objects.bulk_create(contacts)
    counts.customers, counts.contacts = len(customers), len(contacts)

    residential = [c for c in customers if c.kind == CustomerKind.RESIDENTIAL]
    business = [c for c in customers if c.kind == CustomerKind.BUSINESS and c is not pool_owner]
    allocations: list[Allocation] = []

    # IPv6: every line has a delegated prefix for as long as it has been a customer.
    for i, customer in enumerate(residential):
        net = ipaddress.IPv6Network((int(RESIDENTIAL_V6.network_address) + (i << 72), 56))
        allocations.append(_alloc(customer, net, customer.created_at, None, AllocationSource.POOL, "delegated prefix"))
    for i, customer in enumerate(business):
        net = ipaddress.IPv6Network((int(BUSINESS_V6.network_address) + (i << 80), 48))
        allocations.append(_alloc(customer, net, customer.created_at, None, AllocationSource.STATIC))

    # Business IPv4: a hosting reseller with a /26, a /29 of it reassigned to a customer of
    # theirs (resolve() picks the more specific one), then /29 and /30 blocks for the rest.
    reseller, sub = business[0], business[1]
    allocations.append(_alloc(reseller, RESELLER_BLOCK, reseller.created_at, None, AllocationSource.STATIC))
    allocations.append(
        _alloc(sub, RESELLER_SUB, start - timedelta(days=200), None, AllocationSource.STATIC, "reassigned by B-200001")
    )
    blocks = [b for cidr, size in BUSINESS_BLOCKS for b in ipaddress.ip_network(cidr).subnets(new_prefix=size)]
    for customer, block in zip(business[2:], blocks, strict=False):
        if rng.random() < 0.25:
            # The block changed hands: an earlier business held it until a few months ago.
            moved = now - timedelta(days=rng.randint(min(20, days), max(20, days)))
            before = rng.choice(business)
            if before is not customer:
                allocations.append(
                    _alloc(before, block, moved - timedelta(days=400), moved, AllocationSource.STATIC, "returned")
                )
                allocations.append(_alloc(customer, block, moved, None, AllocationSource.STATIC))
                continue
        allocations.append(_alloc(customer, block, customer.created_at, None, AllocationSource.STATIC))

    # Residential IPv4: dynamic leases. Most lines on public pools, some behind CGNAT, where a
    # session holds a block of source ports on a shared public address instead of an address.
    n_cgnat = len(residential) // 6
    public_pool = [ip for cidr in RESIDENTIAL_POOLS for ip in _pool_hosts(cidr)]
    sessions = _lease_sessions(residential[n_cgnat:], public_pool, start, now, rng)
    for customer, ip, valid_from, valid_to in sessions:
        allocations.append(_alloc(customer, f"{ip}/32", valid_from, valid_to, AllocationSource.LEASE))
    counts.leases = len(sessions)
    allocations.append(_alloc(pool_owner, CGNAT_PUBLIC, pool_owner.created_at, None, AllocationSource.CGNAT_POOL))
    slots = [
        f"{ip}|{first}"
        for ip in ipaddress.ip_network(CGNAT_PUBLIC)
        for first in range(1024, 65536 - CGNAT_BLOCK_PORTS + 1, CGNAT_BLOCK_PORTS)
    ]
    blocks = _lease_sessions(residential[:n_cgnat], slots, start, now, rng)
    for customer, slot, valid_from, valid_to in blocks:
        ip, first = slot.split("|")
        block = _alloc(customer, f"{ip}/32", valid_from, valid_to, AllocationSource.PORT_BLOCK, "CGNAT port block")
        block.port_from, block.port_to = int(first), int(first) + CGNAT_BLOCK_PORTS - 1
        allocations.append(block)
    counts.port_blocks = len(blocks)

    for allocation in allocations:
        allocation.customer_id = allocation.customer.pk
    Allocation.objects.bulk_create(allocations, batch_size=2000)
    AllocationChange.objects.bulk_create(
        [
            AllocationChange(
                allocation=a,
                network=a.network,
                action=AllocationChange.Action.CREATED,
                actor_label=ACTOR_LABEL,
                old=None,
                new=a.snapshot(),
                at=now,
            )
            for a in allocations
        ],
        batch_size=2000,
    )
    counts.allocations = len(allocations)
    return counts
