"""A seeded generator of realistic dealtrail corpora in the native line format.

    python bench/generate.py --events 1000000 --seed 7 --out corpus.jsonl

Reps scale with the size asked for (one rep logs about 12,000 events a
year; at least eight reps), so a large corpus covers about one year of
selling that starts on ``START``. Each rep has habits (how fast they follow
up, whether they bring in the decision maker, how soon they give up, how
late they log their touches); each deal draws its behaviour from its rep's
habits, and whether it is won or lost depends on that behaviour, so
``dealtrail backtest`` finds real signal in a corpus.

Output is streamed deal by deal (each deal's lines in the order they
happened, deals in the order they opened), so memory stays constant whatever
the size. The same seed and size give byte-identical output.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any, BinaryIO
from zoneinfo import ZoneInfo

import orjson

# A Monday well in the past, so every generated time (and logged_at) is history.
START = date(2024, 1, 8)
EVENTS_PER_REP_YEAR = 12_000
# Business days between two deals a rep opens, on average.
DAYS_BETWEEN_DEALS = 2.0
WORKDAY_START, WORKDAY_END = 9, 17


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


ZONES: tuple[tuple[str, str], ...] = (
    ("Europe/London", "GBP"),
    ("Europe/Paris", "EUR"),
    ("Europe/Berlin", "EUR"),
    ("America/New_York", "USD"),
    ("America/Chicago", "USD"),
    ("America/Los_Angeles", "USD"),
    ("Australia/Sydney", "AUD"),
    ("Asia/Singapore", "SGD"),
)
STAGES = ("prospecting", "qualification", "discovery", "demo", "proposal")

FIRST = _words(
    "amara ben chloe dev elena farid grace hugo ines jonas kate liam maya "
    "nils olivia pavel quinn rosa sam tara umar vera wei xena yusuf zoe"
)
LAST = _words(
    "adler brooks castro dubois evans fischer garcia hale ito jensen "
    "kowalski lind moreau novak okafor park quint rossi silva tanaka ueda "
    "vogel walsh young"
)
SYLLABLES = _words(
    "al bri cor den el fen gar hol ir jun kel lum mar nor or pin quar ros "
    "sil tor ul ven wes yar zen"
)
INDUSTRIES = (
    "Logistics",
    "Health",
    "Foods",
    "Energy",
    "Systems",
    "Retail",
    "Utilities",
    "Insurance",
    "Manufacturing",
    "Labs",
    "Media",
    "Freight",
)
PRODUCTS = (
    "route planning",
    "crew dispatch",
    "billing platform",
    "analytics suite",
    "field service app",
    "inventory sync",
    "customer portal",
    "data pipeline",
)
TOPICS = (
    "the rollout plan",
    "pricing for the first year",
    "the security review",
    "integration with their ERP",
    "the pilot scope",
    "data migration",
    "the reference call",
    "SSO and audit logging",
    "the support model",
    "volume discounts",
    "the implementation timeline",
    "their renewal date",
)
COMPETITORS = ("Routewise", "Dispatchly", "Northbeam", "Quanta CRM", "Fieldstack")
LOSS_REASONS = (
    ("Chose a competitor", True),
    ("Went with a competitor on price", True),
    ("No budget this year", False),
    ("Project deprioritised", False),
    ("Timing: revisit next fiscal year", False),
)
# (role, title) of the people an account has; the first two decide.
ACCOUNT_ROLES = (
    ("decision_maker", "VP Operations"),
    ("economic_buyer", "CFO"),
    ("champion", "Operations Manager"),
    ("technical_evaluator", "Enterprise Architect"),
    ("user", "Team Lead"),
    ("influencer", "Head of Planning"),
    ("procurement", "Procurement Lead"),
    ("legal", "Counsel"),
    ("gatekeeper", "Executive Assistant"),
)
MANAGERS = ("coach.harper", "coach.ramos", "coach.lindqvist")


@dataclass(frozen=True, slots=True)
class Rep:
    name: str
    zone: int
    # Median business hours to follow up a buyer.
    latency_hours: float
    # Chance a deal involves the decision maker while the solution is shaped.
    multithreads: float
    # Chance of giving up after an unanswered try or two.
    gives_up: float
    # Chance a touch is logged days after it happened.
    logs_late: float
    # Chance of agreeing a dated next step after a round with the buyer.
    plans: float


@dataclass(frozen=True, slots=True)
class Person:
    contact: str
    name: str
    title: str
    role: str


@dataclass(frozen=True, slots=True)
class Account:
    name: str
    code: str
    zone: int
    people: tuple[Person, ...]


def rep(seed: int, index: int) -> Rep:
    """Rep ``index``: derived from the seed alone, so never kept in memory."""
    rng = random.Random(f"{seed}/rep/{index}")
    first, last = FIRST[index % len(FIRST)], LAST[(index // len(FIRST)) % len(LAST)]
    cycle = index // (len(FIRST) * len(LAST))
    return Rep(
        name=f"{first}.{last}" + (str(cycle + 1) if cycle else ""),
        zone=rng.randrange(len(ZONES)),
        # Most reps answer within hours; a sluggish few take days.
        latency_hours=math.exp(
            rng.gauss(math.log(14.0 if rng.random() < 0.25 else 1.5), 0.4)
        ),
        multithreads=rng.uniform(0.35, 0.95),
        gives_up=rng.uniform(0.05, 0.5),
        logs_late=0.0 if rng.random() < 0.6 else rng.uniform(0.02, 0.12),
        plans=rng.uniform(0.1, 0.9),
    )


def account(seed: int, index: int, zone: int) -> Account:
    """Account ``index`` and its people, derived from the seed alone."""
    rng = random.Random(f"{seed}/account/{index}")
    stem = "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 3)))
    code = f"{stem.upper()}{index}"
    name = f"{stem.capitalize()} {rng.choice(INDUSTRIES)} {index}"
    domain = f"{stem}{index}.example"
    people = []
    used: set[str] = set()
    for role, title in ACCOUNT_ROLES[:2] + tuple(
        rng.sample(ACCOUNT_ROLES[2:], rng.randint(3, 6))
    ):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        local = f"{first}.{last}"
        while local in used:
            local += "x"
        used.add(local)
        people.append(
            Person(
                contact=f"{local}@{domain}",
                name=f"{first.capitalize()} {last.capitalize()}",
                title=title,
                role=role,
            )
        )
    return Account(name=name, code=code, zone=zone, people=tuple(people))


# Business time, in a deal's local wall clock (naive datetimes).


def _into_hours(t: datetime) -> datetime:
    """The next moment inside working hours, from ``t`` on."""
    if t.hour >= WORKDAY_END:
        t = datetime.combine(t.date() + timedelta(days=1), time(WORKDAY_START))
    elif t.hour < WORKDAY_START:
        t = datetime.combine(t.date(), time(WORKDAY_START))
    while t.weekday() >= 5:
        t = datetime.combine(t.date() + timedelta(days=1), time(WORKDAY_START))
    return t


def add_business_hours(t: datetime, hours: float) -> datetime:
    t = _into_hours(t)
    left = timedelta(hours=hours)
    while True:
        end = datetime.combine(t.date(), time(WORKDAY_END))
        if t + left < end:
            t += left
            return t.replace(second=0, microsecond=0)
        left -= end - t
        t = _into_hours(end)


def business_day(offset: float) -> date:
    """The date ``offset`` business days after ``START`` (a Monday)."""
    whole = int(offset)
    return START + timedelta(days=(whole // 5) * 7 + whole % 5)


@dataclass(slots=True)
class DealWriter:
    """One deal's lines, in the order they happened."""

    key: str
    zone: ZoneInfo
    rng: random.Random
    rep: Rep
    now: datetime
    lines: list[dict[str, Any]] = field(default_factory=list)
    touches: list[str] = field(default_factory=list)
    retracted: set[str] = field(default_factory=set)
    active: list[Person] = field(default_factory=list)
    ever: list[Person] = field(default_factory=list)

    def at(self, hours: float) -> str:
        """Move the clock ``hours`` business hours on (at least a minute)."""
        self.now = add_business_hours(self.now, max(hours, 1 / 60))
        return self.now.replace(tzinfo=self.zone).isoformat()

    def emit(self, kind: str, hours: float, **fields: Any) -> None:
        self._add(kind, self.at(hours), fields)

    def _add(self, kind: str, occurred_at: str, fields: dict[str, Any]) -> None:
        line = {"type": kind, "deal": self.key, "occurred_at": occurred_at}
        line.update({k: v for k, v in fields.items() if v is not None})
        self.lines.append(line)

    def join(self, person: Person, hours: float = 0.1) -> None:
        if person in self.active:
            return
        self.emit(
            "StakeholderJoined",
            hours,
            contact=person.contact,
            name=person.name,
            title=person.title,
            role=person.role,
        )
        self.active.append(person)
        if person not in self.ever:
            self.ever.append(person)

    def touch(
        self,
        hours: float,
        channel: str,
        direction: str,
        people: list[Person],
        summary: str,
        outcome: str | None = None,
        duration: int | None = None,
    ) -> str:
        touchpoint = f"{self.key}-t{len(self.touches) + 1:03d}"
        occurred_at = self.at(hours)
        if self.rng.random() < self.rep.logs_late:
            lag = timedelta(
                days=self.rng.randint(2, 8), minutes=self.rng.randint(60, 900)
            )
        else:
            lag = timedelta(minutes=self.rng.randint(2, 120))
        fields = {
            "logged_at": (self.now.replace(tzinfo=self.zone) + lag).isoformat(),
            "touchpoint": touchpoint,
            "channel": channel,
            "direction": direction,
            "participants": [p.contact for p in people],
            "rep": self.rep.name if direction != "inbound" else None,
            "summary": summary,
            "outcome": outcome,
            "duration_minutes": duration,
        }
        self._add("TouchpointLogged", occurred_at, fields)
        self.touches.append(touchpoint)
        return touchpoint


def _names(people: list[Person]) -> str:
    return " and ".join(p.name.split()[0] for p in people)


def _sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x))


def deal_lines(
    seed: int, number: int, owner: Rep, acct: Account, opened_on: date
) -> list[dict[str, Any]]:
    """Every line of deal ``number``, in the order they happened."""
    rng = random.Random(f"{seed}/deal/{number}")
    zone_name, currency = ZONES[acct.zone]
    opened_at = datetime.combine(
        opened_on, time(WORKDAY_START + rng.randrange(7), rng.randrange(60))
    )
    key = f"{acct.code}-{number:07d}"
    w = DealWriter(key, ZoneInfo(zone_name), rng, owner, opened_at)

    # The deal's behaviour, drawn from its rep's habits.
    latency = owner.latency_hours * math.exp(rng.gauss(0, 0.3))
    slow = latency > 8
    involves_decider = rng.random() < owner.multithreads
    goes_dark = rng.random() < 0.2
    plans = owner.plans > 0.5
    deciders = [
        p for p in acct.people if p.role in ("decision_maker", "economic_buyer")
    ]
    champions = [p for p in acct.people if p.role == "champion"]
    others = [
        p for p in acct.people if p.role not in ("decision_maker", "economic_buyer")
    ]
    win_logit = (
        1.2
        - 2.5 * (not involves_decider)
        - 2.0 * slow
        - 1.5 * goes_dark
        + 0.6 * plans
        + 0.3 * bool(champions)
    )
    won = rng.random() < _sigmoid(win_logit)
    stays_open = rng.random() < 0.08
    # A win goes through every stage; a loss happens in some stage, and a
    # deal the decision maker never saw is lost late, when they finally look.
    if won or stays_open or (not involves_decider and rng.random() < 0.7):
        last_stage = len(STAGES)
    else:
        last_stage = rng.randint(1, len(STAGES))

    amount = int(round(math.exp(rng.gauss(math.log(40_000), 0.8)), -2))
    expected = opened_on + timedelta(days=rng.randint(45, 120))
    w.emit(
        "DealOpened",
        0,
        name=f"{acct.name} - {rng.choice(PRODUCTS)}",
        account=acct.name,
        owner=owner.name,
        stage=STAGES[0],
        amount=amount,
        currency=currency,
        expected_close=expected.isoformat(),
        timezone=zone_name,
    )
    # The first contact: a champion if there is one, else anyone but a decider.
    first = champions[0] if champions else rng.choice(others)
    w.join(first)

    # Buyers answer a slow rep less often.
    reply_rate = 0.55 if slow else 0.75

    def follow_up(people: list[Person], about: str) -> None:
        """The rep's answer to a buyer, after the rep's latency."""
        hours = latency * math.exp(rng.gauss(0, 0.4))
        w.touch(
            hours,
            rng.choice(("email", "email", "call")),
            "outbound",
            people,
            f"Answered {_names(people)} on {about}; {rng.choice(TOPICS)} next.",
            outcome="connected" if rng.random() < 0.3 else None,
        )
        if rng.random() < 0.25:
            due = business_day_after(w.now, rng.randint(2, 5))
            w.emit(
                "FollowUpPromised",
                0.2,
                due=due.isoformat(),
                promise=f"Send {rng.choice(TOPICS)} to {_names(people)}.",
            )
            # Kept on time, or late when the rep is slow.
            w.touch(
                rng.uniform(4, 16) if not slow else rng.uniform(30, 60),
                "email",
                "outbound",
                people,
                f"Sent what was promised: {rng.choice(TOPICS)}.",
            )

    def exchange(people: list[Person]) -> None:
        """One round: the rep reaches out, the buyer may answer."""
        about = rng.choice(TOPICS)
        kind = rng.random()
        if kind < 0.25:
            # Calls that ring out before someone picks up.
            for _ in range(rng.randint(0, 2)):
                w.touch(
                    rng.uniform(2, 10),
                    "call",
                    "outbound",
                    people[:1],
                    f"Called {_names(people[:1])} about {about}.",
                    outcome=rng.choice(("no_answer", "voicemail")),
                )
            w.touch(
                rng.uniform(2, 10),
                "call",
                "outbound",
                people[:1],
                f"Reached {_names(people[:1])} on {about}; agreed to follow up.",
                outcome="connected",
                duration=rng.randint(10, 40),
            )
        elif kind < 0.45:
            w.touch(
                rng.uniform(4, 24),
                rng.choice(("meeting", "demo")),
                "outbound",
                people,
                f"Met {_names(people)} on {about}; clear action items for us.",
                outcome="connected",
                duration=rng.choice((30, 45, 60, 90)),
            )
            if rng.random() < 0.2:
                person = rng.choice(people)
                w.emit(
                    "StakeholderPriorityNoted",
                    0.3,
                    contact=person.contact,
                    priority=f"Measured on {rng.choice(TOPICS)} this year.",
                )
            follow_up(people, about)
        else:
            w.touch(
                rng.uniform(2, 12),
                rng.choice(("email", "email", "message", "social")),
                "outbound",
                people,
                f"Wrote to {_names(people)} about {about}.",
            )
        if rng.random() < reply_rate:
            asker = rng.choice(people)
            w.touch(
                rng.uniform(1, 16),
                rng.choice(("email", "email", "call", "message")),
                "inbound",
                [asker],
                f"{asker.name.split()[0]} replied on {about} with two questions.",
                outcome="replied",
            )
            follow_up([asker], about)
            if rng.random() < 0.08:
                # The buyer asks for time: the rep says yes at once (above)
                # and calls back when asked.
                not_before = business_day_after(w.now, rng.randint(5, 15))
                start = datetime.combine(not_before, time(WORKDAY_START))
                w.emit(
                    "FollowUpRequested",
                    0.1,
                    by=asker.contact,
                    not_before=start.replace(tzinfo=w.zone).isoformat(),
                    note="Busy with quarter close; asked to be contacted later.",
                )
                w.now = max(w.now, start)
                w.touch(
                    latency * math.exp(rng.gauss(0, 0.4)),
                    "call",
                    "outbound",
                    [asker],
                    f"Called {asker.name.split()[0]} back as agreed, on {about}.",
                    outcome="connected",
                    duration=rng.randint(15, 45),
                )
        if rng.random() < owner.plans:
            w.emit(
                "NextStepSet",
                0.3,
                description=f"Review {rng.choice(TOPICS)} with {_names(people)}.",
                due=business_day_after(w.now, rng.randint(3, 10)).isoformat(),
                owner=owner.name,
            )

    def people_now() -> list[Person]:
        """Who the rep writes to: some of the deal's current contacts."""
        pool = [
            p for p in w.active if p.role not in ("decision_maker", "economic_buyer")
        ]
        if involves_decider:
            pool += [p for p in w.active if p in deciders]
        chosen = rng.sample(pool, min(len(pool), rng.randint(1, 3))) if pool else []
        return chosen or [first]

    # The deal goes dark in a stage it reaches, after its first round there.
    dark_stage = rng.randrange(last_stage) if goes_dark else -1
    for index, stage in enumerate(STAGES[:last_stage]):
        if index:
            w.emit("StageChanged", rng.uniform(0.5, 4), stage=stage)
        # New people come in as the deal matures.
        joiners = [p for p in others if p not in w.ever]
        if joiners and rng.random() < 0.6:
            w.join(rng.choice(joiners), rng.uniform(0.5, 6))
        if index == 2 and involves_decider:
            # The decision maker helps shape the solution.
            decider = rng.choice(deciders)
            w.join(decider, rng.uniform(0.5, 6))
            exchange([decider, first])
        if rng.random() < owner.plans:
            w.emit(
                "NextStepSet",
                rng.uniform(0.5, 2),
                description=f"Agree {rng.choice(TOPICS)} for the {stage} stage.",
                due=business_day_after(w.now, rng.randint(3, 8)).isoformat(),
                owner=owner.name,
            )
        for round_ in range(rng.randint(1, 4)):
            exchange(people_now())
            if index == dark_stage and round_ == 0:
                # Nobody touches the deal for weeks.
                w.at(8 * rng.uniform(12, 30))
            extra = rng.random()
            if extra < 0.03 and w.touches:
                touchpoint = rng.choice(w.touches)
                if touchpoint not in w.retracted:
                    w.emit(
                        "CoachingNoteAdded",
                        0.5,
                        author=rng.choice(MANAGERS),
                        note="Good recap; next time name a date for the answer.",
                        about=touchpoint,
                    )
            elif extra < 0.045 and w.touches:
                touchpoint = w.touches[-1]
                if touchpoint not in w.retracted:
                    w.emit(
                        "TouchpointCorrected",
                        0.3,
                        touchpoint=touchpoint,
                        duration_minutes=rng.randint(15, 90),
                    )
            elif extra < 0.05:
                # A touch logged on this deal by mistake, then taken back.
                touchpoint = w.touch(
                    0.2,
                    "call",
                    "outbound",
                    [first],
                    f"Call with {first.name.split()[0]} about the other project.",
                    outcome="connected",
                    duration=rng.randint(5, 30),
                )
                w.emit(
                    "TouchpointRetracted",
                    rng.uniform(0.2, 16),
                    touchpoint=touchpoint,
                    reason="Logged on the wrong deal.",
                )
                w.retracted.add(touchpoint)
            elif extra < 0.08:
                expected += timedelta(days=rng.randint(14, 45))
                w.emit(
                    "DealUpdated",
                    0.5,
                    expected_close=expected.isoformat(),
                    amount=int(round(amount * rng.uniform(0.8, 1.2), -2))
                    if rng.random() < 0.3
                    else None,
                )
            elif extra < 0.09 and len(w.active) > 2:
                person = rng.choice([p for p in w.active if p is not first])
                w.emit(
                    "StakeholderLeft",
                    0.5,
                    contact=person.contact,
                    reason="Left the company.",
                )
                w.active.remove(person)
            elif extra < 0.1:
                person = rng.choice(w.active)
                if person.role == "influencer":
                    w.emit(
                        "StakeholderRoleChanged",
                        0.5,
                        contact=person.contact,
                        role="champion",
                    )
        if index == 3 and not involves_decider and rng.random() < 0.5:
            # The decision maker is named, but nobody talks to them.
            w.join(rng.choice(deciders), rng.uniform(0.5, 4))

    if stays_open:
        return w.lines
    if won:
        w.emit("StageChanged", rng.uniform(2, 16), stage="negotiation")
        exchange(people_now())
        w.emit(
            "DealWon",
            rng.uniform(8, 40),
            amount=int(round(amount * rng.uniform(0.85, 1.05), -2)),
            note="Signed after legal review.",
        )
        if rng.random() < 0.1:
            # The customer comes back to the rep now and then.
            w.at(8 * rng.uniform(10, 60))
            w.touch(
                1,
                "call",
                "outbound",
                [first],
                f"Check-in call with {first.name.split()[0]} after go-live.",
                outcome="connected",
                duration=20,
            )
        return w.lines
    # A lost deal: the rep gives up after a try or two, or it goes quiet,
    # or the buyer says no.
    if rng.random() < owner.gives_up:
        for _ in range(rng.randint(1, 2)):
            w.touch(
                rng.uniform(4, 24),
                "email",
                "outbound",
                [first],
                f"Checking in with {first.name.split()[0]}: any news?",
            )
        w.at(8 * rng.uniform(15, 40))
        reason, named = "No decision; the buyer went quiet", False
    else:
        reason, named = rng.choice(LOSS_REASONS)
    w.emit(
        "DealLost",
        rng.uniform(4, 40),
        reason=reason,
        competitor=rng.choice(COMPETITORS) if named else None,
    )
    if rng.random() < 0.03:
        w.emit("DealReopened", 8 * rng.uniform(10, 40), reason="New budget approved.")
        exchange(people_now())
        w.emit(
            "DealLost",
            rng.uniform(8, 40),
            reason="Chose a competitor",
            competitor=rng.choice(COMPETITORS),
        )
    return w.lines


def business_day_after(t: datetime, days: int) -> date:
    day = t.date()
    while days:
        day += timedelta(days=1)
        if day.weekday() < 5:
            days -= 1
    return day


def generate(events: int, seed: int) -> Iterator[bytes]:
    """Exactly ``events`` native lines (the last deal may stop part way)."""
    rng = random.Random(seed)
    reps = max(8, math.ceil(events / EVENTS_PER_REP_YEAR))
    # Each rep's last few accounts: a rep sells to an account again.
    recent: list[list[tuple[int, int]]] = [[] for _ in range(reps)]
    accounts = 0
    clock = 0.0
    number = 0
    left = events
    while left > 0:
        clock += rng.expovariate(reps / DAYS_BETWEEN_DEALS)
        number += 1
        who = rng.randrange(reps)
        owner = rep(seed, who)
        mine = recent[who]
        if mine and rng.random() < 0.35:
            index, zone = rng.choice(mine)
        else:
            accounts += 1
            index = accounts
            zone = owner.zone if rng.random() < 0.85 else rng.randrange(len(ZONES))
            mine.append((index, zone))
            del mine[:-5]
        lines = deal_lines(
            seed, number, owner, account(seed, index, zone), business_day(clock)
        )
        for line in lines[:left]:
            yield orjson.dumps(line) + b"\n"
        left -= min(left, len(lines))


def write(events: int, seed: int, out: BinaryIO) -> None:
    for line in generate(events, seed):
        out.write(line)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Write a seeded, realistic dealtrail corpus (native JSONL)."
    )
    parser.add_argument("--events", type=_positive, required=True)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", required=True, help="a file, or '-' for stdout")
    args = parser.parse_args(argv)
    if args.out == "-":
        write(args.events, args.seed, sys.stdout.buffer)
        return 0
    target = Path(args.out)
    partial = target.with_name(target.name + ".partial")
    try:
        with open(partial, "wb", buffering=1 << 20) as out:
            write(args.events, args.seed, out)
        os.replace(partial, target)
    except OSError as e:
        partial.unlink(missing_ok=True)
        print(f"error: {args.out}: {e.strerror}", file=sys.stderr)
        return 1
    return 0


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


if __name__ == "__main__":
    sys.exit(main())
