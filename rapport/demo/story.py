"""The demo company's story, as Segment-spec calls: no database, deterministic for a
seed. "Northwind Roasters" sells coffee online, as a subscription or one bag at a time,
to people and to small offices.

What the story plants, so that every page has something true to show:
- acquisition through campaigns (UTM parameters on the first page view);
- anonymous browsing on a laptop, sign-up on a phone for most, then a log-in on the
  laptop that joins the two histories;
- purchases drawn from BG/NBD (a Poisson rate per customer, a chance to drop out after
  each purchase) with Gamma-Gamma order values, so the CLV models can fit them;
- the churn drivers: skipping the Brew Planner in the first two weeks and an unresolved
  support ticket each make dropping out after a purchase several times likelier;
- app use, newsletters sent, opened and clicked, tickets and chats, NPS answers that
  follow the customer's fate, email consent given and some of it withdrawn;
- offices grouped into companies (some under a parent company), and one customer,
  Globex, recorded under two legal names;
- duplicates: a few customers also keyed in by the help desk under its own id, with
  typos in the name and the email;
- a funnel with leaks: visitors who browse and never sign up, and sign-ups who never
  buy (more of them among those who skipped the Brew Planner).

The leaks draw from a second random stream per customer (`_shape_rng`) and cut the
story drawn for a customer rather than draw it differently, so every other draw (and
the duplicates the help desk plants) stays as it was.
"""

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np

DAY = timedelta(days=1)
# Sources the calls come from (name, kind): created in the workspace by the loader.
SOURCES = {
    "web": ("Website", "website"),
    "app": ("Mobile app", "mobile"),
    "desk": ("Help desk", "server"),
    "email": ("Email platform", "server"),
    "billing": ("Billing", "server"),
}
CAMPAIGNS = [
    # (utm_source, utm_medium, utm_campaign, share of sign-ups)
    ("google", "cpc", "brand-search", 0.25),
    ("facebook", "paid_social", "first-bag-free", 0.20),
    ("newsletter", "email", "refer-a-friend", 0.10),
    ("partner", "affiliate", "office-coffee", 0.10),
    (None, None, None, 0.35),  # organic
]
FIRST_NAMES = [
    "Ada",
    "Alan",
    "Alice",
    "Amir",
    "Anna",
    "Ben",
    "Bo",
    "Carla",
    "Chen",
    "Chloe",
    "Dan",
    "Dana",
    "Eli",
    "Emma",
    "Eva",
    "Finn",
    "Gia",
    "Hana",
    "Ian",
    "Ines",
    "Ivan",
    "Jack",
    "Jana",
    "Jon",
    "Kai",
    "Kate",
    "Lars",
    "Lea",
    "Leo",
    "Lina",
    "Luca",
    "Maya",
    "Max",
    "Mia",
    "Nia",
    "Noah",
    "Nora",
    "Olga",
    "Omar",
    "Paul",
    "Pia",
    "Raj",
    "Rosa",
    "Sam",
    "Sara",
    "Sofia",
    "Tom",
    "Uma",
    "Vera",
    "Yuki",
    "Zoe",
]
LAST_NAMES = [
    "Abbott",
    "Baker",
    "Bauer",
    "Brown",
    "Castro",
    "Chen",
    "Cohen",
    "Costa",
    "Davies",
    "Dubois",
    "Evans",
    "Fischer",
    "Garcia",
    "Hansen",
    "Ito",
    "Jensen",
    "Kim",
    "Kowalski",
    "Larsen",
    "Lopez",
    "Martin",
    "Meyer",
    "Moreau",
    "Nagy",
    "Novak",
    "Olsen",
    "Patel",
    "Petrov",
    "Quinn",
    "Rossi",
    "Sato",
    "Schmidt",
    "Silva",
    "Smith",
    "Suzuki",
    "Taylor",
    "Varga",
    "Wagner",
    "Walsh",
    "Weber",
    "Wilson",
    "Young",
    "Zhang",
]
CITIES = [
    "Leeds",
    "Bristol",
    "Manchester",
    "Glasgow",
    "Cardiff",
    "Belfast",
    "York",
    "Brighton",
    "Oxford",
    "Bath",
]
INDUSTRIES = ["design", "legal", "dental", "accounting", "software", "architecture", "marketing"]
TICKET_TOPICS = ("late delivery", "grind size", "billing", "damaged bag", "pause subscription")


@dataclass
class Summary:
    """What the story holds, for the loader's report and the tests."""

    customers: int = 0
    calls: int = 0
    purchases: int = 0
    revenue: float = 0.0
    churned: int = 0
    two_devices: int = 0
    planner_users: int = 0
    churned_planner_users: int = 0
    churned_without_planner: int = 0
    unresolved_tickets: int = 0
    desk_duplicates: int = 0
    visitors_only: int = 0
    never_bought: int = 0
    companies: int = 0
    businesses: int = 0
    consent_withdrawn: int = 0
    by_type: dict = field(default_factory=dict)


@dataclass
class _Customer:
    n: int
    user_id: str
    first: str
    last: str
    email: str
    phone: str | None
    birthday: str
    city: str
    company: int | None
    subscriber: bool


# The demo sells in pounds; the euro shop's orders are converted at about this rate
# (rapport.demo.services.demo_money uploads the monthly rates).
GBP_PER_EUR = 0.86


def _company_names(count: int) -> list[dict]:
    """Companies: the first is Globex (two legal entities, see `_globex`); every tenth
    after it is a parent company of the next few."""
    companies = []
    for k in range(count):
        name = f"{LAST_NAMES[k % len(LAST_NAMES)]} {INDUSTRIES[k % len(INDUSTRIES)].title()}"
        suffix = ("Ltd", "LLP", "Partners", "& Co")[k % 4]
        companies.append(
            {
                "group_id": f"co-{k:04d}",
                "name": f"{name} {suffix}",
                "industry": INDUSTRIES[k % len(INDUSTRIES)],
                "employees": int(5 + (k * 37) % 120),
                "website": f"https://{name.lower().replace(' ', '')}{k}.example",
                "parent": f"co-{k - k % 10:04d}" if k % 10 and k > 10 else None,
            }
        )
    return companies


GLOBEX = [
    {
        "group_id": "globex-corp",
        "name": "Globex Corporation",
        "industry": "software",
        "employees": 240,
        "website": "https://www.globex.example",
        "phone": "+44 20 7946 0100",
        "address": {"city": "London", "postal_code": "EC1A 1BB", "country": "GB"},
    },
    {
        "group_id": "globex-uk-ltd",
        "name": "Globex UK Ltd.",
        "industry": "software",
        "employees": 60,
        "website": "globex.example",
        "phone": "020 7946 0100",
        "address": {"city": "London", "postal_code": "EC1A1BB", "country": "GB"},
    },
]


def _typo(text: str, rng: np.random.Generator) -> str:
    """One slip of the keyboard: two letters swapped or one doubled."""
    if len(text) < 3:
        return text + text[-1]
    i = int(rng.integers(1, len(text) - 1))
    if rng.random() < 0.5:
        return text[:i] + text[i + 1] + text[i] + text[i + 2 :]
    return text[:i] + text[i] + text[i:]


def _shape_rng(seed: int, n: int) -> np.random.Generator:
    """The second random stream of customer `n`: the funnel's leaks."""
    return np.random.default_rng([seed, n, 7])


# Visitors who browse and leave without signing up, per customer who signs up.
VISITORS_ONLY_PER_SIGNUP = 0.8
# The share of sign-ups who never buy, without and with the Brew Planner early on.
NEVER_BUY = {False: 0.3, True: 0.1}


# What a sign-up who never buys does not do, and what they stop doing when they go.
_NEVER_BUYER_NEVER = {
    "Order Completed",
    "Subscription Cancelled",
    "Ticket Opened",
    "Ticket Resolved",
    "Chat Started",
    "Survey Answered",
}
_NEVER_BUYER_STOPS = {"App Opened", "Email Opened", "Email Link Clicked", "Brew Planner Used"}


def _kept_by_a_never_buyer(call: dict, quit_at: str) -> bool:
    name = call.get("event")
    if name in _NEVER_BUYER_NEVER:
        return False
    return name not in _NEVER_BUYER_STOPS or call["timestamp"] < quit_at


def story(*, customers: int, months: int, seed: int, end: datetime) -> Iterator[tuple[str, dict]]:
    """(source key, Segment call) for every customer, customer by customer; each call
    carries its own messageId and timestamp. The summary arrives as the last item,
    with the source key "summary"."""
    rng = np.random.default_rng(seed)
    start = end - timedelta(days=round(months * 30.44))
    span_days = (end - start).days
    company_count = max(2, customers // 40)
    companies = _company_names(company_count)
    summary = Summary(companies=company_count + len(GLOBEX))
    counter = {"n": 0}

    def call(kind: str, at: datetime, **body) -> dict:
        counter["n"] += 1
        return {
            "type": kind,
            "messageId": f"demo-{seed}-{counter['n']}",
            "timestamp": at.isoformat(),
            **body,
        }

    campaign_p = np.array([c[3] for c in CAMPAIGNS])
    for n in range(customers):
        summary.customers += 1
        first = FIRST_NAMES[int(rng.integers(len(FIRST_NAMES)))]
        last = LAST_NAMES[int(rng.integers(len(LAST_NAMES)))]
        business = rng.random() < 0.15
        company = int(rng.integers(company_count)) if business else None
        domain = companies[company]["website"].split("//")[1] if business else "mail.example"
        person = _Customer(
            n=n,
            user_id=f"cus_{seed}_{n:07d}",
            first=first,
            last=last,
            email=f"{first.lower()}.{last.lower()}{n}@{domain}",
            phone=f"+4477009{n % 100000:05d}" if rng.random() < 0.5 else None,
            birthday=f"{1955 + int(rng.integers(50))}-{1 + int(rng.integers(12)):02d}-"
            f"{1 + int(rng.integers(28)):02d}",
            city=CITIES[int(rng.integers(len(CITIES)))],
            company=company,
            subscriber=rng.random() < 0.55,
        )
        # Sign-ups grow over time: more recent days are likelier.
        signup = start + timedelta(days=span_days * float(rng.random() ** 0.75) * 0.97)
        signup += timedelta(seconds=int(rng.integers(8 * 3600, 22 * 3600)))
        events: list[tuple[str, dict]] = []

        def track(
            source: str,
            at: datetime,
            name: str,
            properties: dict | None = None,
            *,
            events: list = events,
            user_id: str = person.user_id,
        ) -> None:
            """A track call by this customer."""
            body = {"properties": properties} if properties else {}
            events.append((source, call("track", at, userId=user_id, event=name, **body)))

        laptop, phone_device = f"anon-{seed}-{n}-l", f"anon-{seed}-{n}-p"
        campaign = CAMPAIGNS[int(rng.choice(len(CAMPAIGNS), p=campaign_p))]
        utm = (
            {"source": campaign[0], "medium": campaign[1], "name": campaign[2]}
            if campaign[0]
            else None
        )
        # Browsing before signing up, on the laptop.
        browse_at = signup - timedelta(days=float(rng.uniform(0.2, 10)))
        for page in range(int(rng.integers(1, 6))):
            at = browse_at + timedelta(minutes=3 * page)
            context = {"campaign": utm} if (utm and page == 0) else {}
            path = ("/", "/coffees", "/subscription", "/coffees/ethiopia-guji", "/pricing")[page]
            events.append(
                (
                    "web",
                    call(
                        "page",
                        at,
                        anonymousId=laptop,
                        name=path,
                        properties={"path": path},
                        context=context,
                    ),
                )
            )
        # Visitors who look around and leave: anonymous, never signed up.
        shape = _shape_rng(seed, n)
        for visit in range(int(shape.poisson(VISITORS_ONLY_PER_SIGNUP))):
            summary.visitors_only += 1
            at = start + timedelta(days=span_days * float(shape.random() ** 0.75))
            bounce = CAMPAIGNS[int(shape.choice(len(CAMPAIGNS), p=campaign_p))]
            for page in range(1 + int(shape.integers(3))):
                path = ("/", "/coffees", "/pricing")[page]
                context = (
                    {"campaign": {"source": bounce[0], "medium": bounce[1], "name": bounce[2]}}
                    if bounce[0] and page == 0
                    else {}
                )
                events.append(
                    (
                        "web",
                        call(
                            "page",
                            at + timedelta(minutes=2 * page),
                            anonymousId=f"anon-{seed}-{n}-v{visit}",
                            name=path,
                            properties={"path": path},
                            context=context,
                        ),
                    )
                )
        two_devices = rng.random() < 0.6
        device = phone_device if two_devices else laptop
        source = "app" if two_devices else "web"
        summary.two_devices += two_devices
        traits = {
            "first_name": person.first,
            "last_name": person.last,
            "name": f"{person.first} {person.last}",
            "email": person.email,
            "birthday": person.birthday,
            "address": {"city": person.city, "country": "GB"},
            "plan": "subscription" if person.subscriber else "pay-as-you-go",
            "signup_campaign": campaign[2] or "organic",
            "consent": {"email": {"marketing": "granted" if rng.random() < 0.7 else "denied"}},
        }
        if person.phone:
            traits["phone"] = person.phone
        if company is not None:
            traits["company"] = companies[company]["name"]
        email_consent = traits["consent"]["email"]["marketing"] == "granted"
        events.append(
            (
                "app" if two_devices else "web",
                call("identify", signup, anonymousId=device, userId=person.user_id, traits=traits),
            )
        )
        events.append(
            (
                source,
                call(
                    "track",
                    signup + timedelta(minutes=1),
                    userId=person.user_id,
                    anonymousId=device,
                    event="Signed Up",
                    properties={"plan": traits["plan"]},
                ),
            )
        )
        if two_devices:
            # Back on the laptop days later, logged in: the two histories join.
            login = signup + timedelta(days=float(rng.uniform(1, 20)))
            events.append(
                ("web", call("identify", login, anonymousId=laptop, userId=person.user_id))
            )
        if company is not None:
            co = companies[company]
            group_traits = {k: co[k] for k in ("name", "industry", "employees", "website")}
            if co["parent"]:
                group_traits["parent_group_id"] = co["parent"]
            group_id = co["group_id"]
            if company == 0:
                # Globex: its people are split between its two legal entities.
                globex = GLOBEX[n % 2]
                group_id = globex["group_id"]
                group_traits = {k: v for k, v in globex.items() if k != "group_id"}
            events.append(
                (
                    "web",
                    call(
                        "group",
                        signup + timedelta(minutes=2),
                        userId=person.user_id,
                        groupId=group_id,
                        traits=group_traits,
                    ),
                )
            )
            summary.businesses += 1

        # The planted drivers.
        planner = rng.random() < 0.6
        summary.planner_users += planner
        if planner:
            at = signup + timedelta(days=float(rng.uniform(0.5, 13)))
            track(
                "app",
                at,
                "Brew Planner Used",
                {"brew_method": ("v60", "aeropress", "espresso", "french press")[n % 4]},
            )
        # Skipping the Brew Planner makes dropping out six times likelier: strong enough
        # to stand out among the customers who buy, now that the sign-ups who never buy
        # (more of them without the Planner) are left out of the comparison.
        dropout = float(rng.beta(1.0, 16.0)) * (1.0 if planner else 6.0)
        buys = shape.random() >= NEVER_BUY[planner]

        # Purchases: BG/NBD with Gamma-Gamma order values.
        rate_per_week = float(rng.gamma(shape=2.0, scale=0.12)) * (
            1.6 if person.subscriber else 1.0
        )
        value_scale = float(rng.gamma(shape=4.0, scale=15.0 / 3.0)) / 6.0
        t = signup + timedelta(minutes=5)
        alive_until = end
        tickets_open = False
        orders = 0
        while True:
            value = round(float(rng.gamma(shape=6.0, scale=value_scale)), 2) + 4.0
            orders += 1
            # A few customers order from the euro shop: their money is in EUR.
            currency, amount = (
                ("EUR", round(value / GBP_PER_EUR, 2)) if n % 15 == 7 else ("GBP", value)
            )
            track(
                "billing",
                t,
                "Order Completed",
                {
                    "order_id": f"ord-{seed}-{n}-{orders}",
                    "revenue": amount,
                    "currency": currency,
                    "products": [{"sku": f"bag-{int(rng.integers(12))}", "quantity": 1}],
                },
            )
            # Support along the way: an unresolved ticket makes dropping out likelier.
            if rng.random() < 0.08:
                ticket = f"tk-{seed}-{n}-{orders}"
                opened = t + timedelta(days=float(rng.uniform(1, 5)))
                topic = TICKET_TOPICS[int(rng.integers(len(TICKET_TOPICS)))]
                track("desk", opened, "Ticket Opened", {"ticket_id": ticket, "topic": topic})
                if rng.random() < 0.7:
                    track(
                        "desk",
                        opened + timedelta(hours=float(rng.uniform(2, 72))),
                        "Ticket Resolved",
                        {"ticket_id": ticket},
                    )
                else:
                    tickets_open = True
                    summary.unresolved_tickets += 1
            if rng.random() < 0.05:
                track("desk", t + timedelta(hours=3), "Chat Started", {"topic": "question"})
            p = min(0.95, dropout * (2.5 if tickets_open else 1.0))
            if rng.random() < p:
                alive_until = t + timedelta(days=float(rng.uniform(3, 30)))
                break
            t += timedelta(weeks=float(rng.exponential(1.0 / max(rate_per_week, 0.01))))
            if t >= end:
                break
        churned = alive_until < end or not buys  # a sign-up who never bought left too
        summary.churned += churned
        if churned:
            if planner:
                summary.churned_planner_users += 1
            else:
                summary.churned_without_planner += 1
            if person.subscriber and alive_until < end:
                track(
                    "billing",
                    alive_until,
                    "Subscription Cancelled",
                    {"reason": "too expensive" if tickets_open else "not using it"},
                )
        last_active = min(alive_until, end)

        # App use while active: about every other week.
        at = signup + timedelta(days=float(rng.uniform(1, 14)))
        while at < last_active:
            track("app", at, "App Opened")
            at += timedelta(days=float(rng.uniform(7, 21)))

        # The monthly newsletter to those who said yes; opens fade after churn.
        withdrawn_at = None
        if email_consent and rng.random() < 0.12:
            withdrawn_at = signup + timedelta(
                days=float(rng.uniform(20, max(21, (end - signup).days)))
            )
            if withdrawn_at < end:
                summary.consent_withdrawn += 1
                events.append(
                    (
                        "email",
                        call(
                            "identify",
                            withdrawn_at,
                            userId=person.user_id,
                            traits={"consent": {"email": {"marketing": "denied"}}},
                        ),
                    )
                )
        send = signup + timedelta(days=30 - signup.day % 28)
        issue = 0
        while email_consent and send < end and (withdrawn_at is None or send < withdrawn_at):
            issue += 1
            props = {"campaign": f"newsletter-{send:%Y-%m}", "subject": "This month's coffees"}
            track("email", send, "Email Delivered", props)
            if rng.random() < (0.45 if send < last_active else 0.08):
                opened = send + timedelta(hours=float(rng.uniform(1, 48)))
                track("email", opened, "Email Opened", props)
                if rng.random() < 0.25:
                    track(
                        "email",
                        opened + timedelta(minutes=2),
                        "Email Link Clicked",
                        {**props, "url": "https://northwind.example/coffees"},
                    )
            send += timedelta(days=30)

        # NPS after three months, from half of those still around then.
        survey_at = signup + timedelta(days=90)
        if survey_at < end and rng.random() < 0.5:
            happy = not churned or alive_until > survey_at + timedelta(days=180)
            score = (
                int(rng.integers(8, 11)) if happy and not tickets_open else int(rng.integers(0, 8))
            )
            track("email", survey_at, "Survey Answered", {"survey": "nps", "score": score})

        # Keyed in again by the help desk, with its own id and typos.
        if rng.random() < 0.03:
            summary.desk_duplicates += 1
            at = signup + timedelta(days=float(rng.uniform(5, 60)))
            local, _, host = person.email.partition("@")
            events.append(
                (
                    "desk",
                    call(
                        "identify",
                        min(at, end - DAY),
                        userId=f"desk-{seed}-{n}",
                        traits={
                            "first_name": _typo(person.first, rng),
                            "last_name": person.last,
                            "name": f"{person.first} {person.last}",
                            "email": f"{_typo(local, rng)}@{host}",
                            "birthday": person.birthday,
                            "address": {"city": person.city, "country": "GB"},
                        },
                    ),
                )
            )
        if not buys:
            # Signed up, looked around for a few weeks, never bought: the story drawn
            # for them is cut, not drawn differently, so every other customer's draws
            # (and the demo's duplicates) stay as they were.
            summary.never_bought += 1
            quit_at = (signup + timedelta(days=float(shape.uniform(3, 40)))).isoformat()
            events = [e for e in events if _kept_by_a_never_buyer(e[1], quit_at)]
        events.sort(key=lambda item: item[1]["timestamp"])
        for item in events:
            body = item[1]
            if body["timestamp"] >= end.isoformat():
                continue
            summary.calls += 1
            summary.by_type[body["type"]] = summary.by_type.get(body["type"], 0) + 1
            if body.get("event") == "Order Completed":
                summary.purchases += 1
                paid = body["properties"]
                summary.revenue += paid["revenue"] * (
                    GBP_PER_EUR if paid["currency"] == "EUR" else 1
                )
            yield item
    summary.revenue = round(summary.revenue, 2)
    yield "summary", summary.__dict__


def churn_rate_ratio(summary: dict) -> float:
    """How much likelier churn is for customers who skipped the Brew Planner."""
    users = summary["planner_users"]
    others = summary["customers"] - users
    with_planner = summary["churned_planner_users"] / max(users, 1)
    without = summary["churned_without_planner"] / max(others, 1)
    return without / with_planner if with_planner else math.inf
