"""`medalist cost`: an owned GPU machine against hourly and monthly cloud, per 100 hours.

Currency-neutral: every price is a plain number in whatever currency the user types. The
example `rtx4060ti-vs-g4dn` (Fixstars, "Kaggle image competitions, part 2", slides 23-24), in
yen: a 16 GB RTX 4060 Ti PC at about 250,000 plus about 1,000 of power per 100 hours, against an
AWS g4dn.xlarge at about 8,000 per 100 hours. The source names Google Colab Pro as the monthly
kind but gives no figure, so the example has no monthly plan.

Model of the costs, for H hours of experiments spread over M months:
- owned: price + power_per_100h * H / 100 (the machine keeps its value to you after H hours;
  this prices the first H hours as if they had to pay for it);
- hourly cloud: hourly_rate * H;
- monthly cloud: monthly_fee * M, and only while H / M stays within its monthly hour limit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from medalist.errors import UserError


@dataclass(frozen=True)
class CostInputs:
    """What the user pays; None leaves an option out of the comparison."""

    hours: float = 100.0
    months: float = 1.0
    price: float | None = None  # purchase price of the owned machine
    power_per_100h: float | None = None  # electricity of the owned machine per 100 hours
    hourly_rate: float | None = None  # hourly cloud, per hour
    monthly_fee: float | None = None  # monthly cloud, per month
    monthly_hours: float | None = None  # the monthly plan's hour limit (None: no limit)
    currency: str = ""


@dataclass
class CostOption:
    """One way to pay for the compute, priced for the planned hours."""

    name: str
    total: float | None  # None: this option can't cover the planned hours
    per_100h: float | None
    note: str = ""


@dataclass
class BreakEven:
    """Where two options cost the same: `hours` in total (or a month, for hourly vs monthly)."""

    between: str  # "owned vs hourly cloud", "owned vs monthly cloud", "hourly vs monthly cloud"
    hours: float | None  # None: never, or not within the monthly plan's limit
    text: str


@dataclass
class CostComparison:
    inputs: CostInputs
    options: list[CostOption] = field(default_factory=list)
    break_even: list[BreakEven] = field(default_factory=list)

    def option(self, name: str) -> CostOption | None:
        return next((o for o in self.options if o.name == name), None)


RTX4060TI_VS_G4DN = CostInputs(
    hours=100.0,
    price=250_000.0,  # a PC with a 16 GB RTX 4060 Ti
    power_per_100h=1_000.0,
    hourly_rate=80.0,  # AWS g4dn.xlarge (a 16 GB T4): 8,000 per 100 hours
    currency="yen",
)
EXAMPLES = {"rtx4060ti-vs-g4dn": RTX4060TI_VS_G4DN}
DEFAULT_EXAMPLE = "rtx4060ti-vs-g4dn"  # what `medalist cost` with no prices prints


def example_inputs(name: str) -> CostInputs:
    """The named example's inputs (see EXAMPLES)."""
    if name not in EXAMPLES:
        raise UserError(f"--example {name!r}: the examples are {', '.join(sorted(EXAMPLES))}")
    return EXAMPLES[name]


def merge_inputs(base: CostInputs, **given: float | str | None) -> CostInputs:
    """`base` with every value the user gave (not None) put in its place."""
    return replace(base, **{k: v for k, v in given.items() if v is not None})


def validate_inputs(c: CostInputs) -> None:
    """Each number must make sense for what it prices; at least two options to compare."""
    positive = {
        "--hours": c.hours,
        "--months": c.months,
        "--price": c.price,
        "--hourly": c.hourly_rate,
        "--monthly": c.monthly_fee,
        "--monthly-hours": c.monthly_hours,
    }
    for flag, value in positive.items():
        if value is not None and not (math.isfinite(value) and value > 0):
            raise UserError(f"{flag} {value:g}: give a number above zero")
    if c.power_per_100h is not None and not (
        math.isfinite(c.power_per_100h) and c.power_per_100h >= 0
    ):
        raise UserError(f"--power {c.power_per_100h:g}: give zero or more (cost per 100 hours)")
    if c.price is not None and c.power_per_100h is None:
        raise UserError(
            "--price needs --power: the owned machine's electricity per 100 hours (0 if free)"
        )
    if c.price is None and c.power_per_100h is not None:
        raise UserError("--power prices the owned machine: give its --price too")
    if c.monthly_hours is not None and c.monthly_fee is None:
        raise UserError("--monthly-hours is the monthly plan's limit: give its --monthly fee too")
    given = [c.price, c.hourly_rate, c.monthly_fee]
    if sum(v is not None for v in given) < 2:
        raise UserError(
            "give at least two of --price (with --power), --hourly, --monthly to compare, "
            f"or --example {DEFAULT_EXAMPLE}"
        )


def compare_costs(c: CostInputs) -> CostComparison:
    """Each option's cost for the planned hours, per 100 hours, and the break-even points."""
    validate_inputs(c)
    out = CostComparison(c)
    pace = c.hours / c.months  # hours of experiments per month
    if c.price is not None and c.power_per_100h is not None:
        total = c.price + c.power_per_100h * c.hours / 100
        out.options.append(
            CostOption(
                "owned machine",
                total,
                total / c.hours * 100,
                f"price {_n(c.price)} + power {_n(c.power_per_100h)} per 100 h",
            )
        )
    if c.hourly_rate is not None:
        out.options.append(
            CostOption(
                "hourly cloud",
                c.hourly_rate * c.hours,
                c.hourly_rate * 100,
                f"{_n(c.hourly_rate)} per hour",
            )
        )
    if c.monthly_fee is not None:
        limit = c.monthly_hours
        if limit is not None and pace > limit:
            out.options.append(
                CostOption(
                    "monthly cloud",
                    None,
                    None,
                    f"can't cover it: {_n(pace)} h a month is more than its {_n(limit)} h limit",
                )
            )
        else:
            total = c.monthly_fee * c.months
            out.options.append(
                CostOption(
                    "monthly cloud",
                    total,
                    total / c.hours * 100,
                    f"{_n(c.monthly_fee)} a month for {_n(c.months)} month(s)"
                    + (f", up to {_n(limit)} h a month" if limit is not None else ""),
                )
            )
    out.break_even = _break_even(c, pace)
    return out


def _break_even(c: CostInputs, pace: float) -> list[BreakEven]:
    out = []
    owned = c.price is not None and c.power_per_100h is not None
    power_per_hour = (c.power_per_100h or 0.0) / 100
    if owned and c.hourly_rate is not None:
        name, gain = "owned vs hourly cloud", c.hourly_rate - power_per_hour
        if gain <= 0:
            out.append(BreakEven(name, None, "never: the power alone costs as much per hour"))
        else:
            h = c.price / gain
            text = f"the owned machine is cheaper after {_n(h)} hours ({_n(h / 100)} x 100 h)"
            out.append(BreakEven(name, h, text))
    if owned and c.monthly_fee is not None:
        name = "owned vs monthly cloud"
        if c.monthly_hours is not None and pace > c.monthly_hours:
            text = f"the monthly plan can't cover {_n(pace)} h a month ({_n(c.monthly_hours)} h)"
            out.append(BreakEven(name, None, text))
        else:
            gain = c.monthly_fee / pace - power_per_hour  # monthly cost per hour at this pace
            if gain <= 0:
                out.append(BreakEven(name, None, "never at this pace: power costs as much"))
            else:
                h = c.price / gain
                text = (
                    f"at {_n(pace)} h a month the owned machine is cheaper after {_n(h)} hours "
                    f"({_n(h / pace)} months)"
                )
                out.append(BreakEven(name, h, text))
    if c.hourly_rate is not None and c.monthly_fee is not None:
        name, h = "hourly vs monthly cloud", c.monthly_fee / c.hourly_rate
        limit = c.monthly_hours
        if limit is not None and h > limit:
            text = (
                "hourly is cheaper at any pace the monthly plan allows "
                f"({_n(limit)} h a month, its limit, cost {_n(c.hourly_rate * limit)} by the hour)"
            )
            out.append(BreakEven(name, None, text))
        else:
            upto = f", up to its limit of {_n(limit)} h" if limit is not None else ""
            text = f"monthly is cheaper above {_n(h)} h a month{upto}"
            out.append(BreakEven(name, h, text))
    return out


def _n(x: float) -> str:
    """A number for people: thousands separated, no needless decimals."""
    if abs(x) >= 100 or float(x).is_integer():
        return f"{x:,.0f}"
    return f"{x:,.1f}" if abs(x) >= 10 else f"{x:,.2f}"


def format_money(x: float | None, currency: str = "") -> str:
    """An amount as printed in the table; '-' where the option can't cover the hours."""
    if x is None:
        return "-"
    return f"{_n(x)} {currency}".strip()
