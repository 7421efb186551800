"""`medalist cost`: owned GPU against hourly and monthly cloud, per 100 hours, break-even."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
from conftest import medalist

from medalist.envtools.cost import (
    RTX4060TI_VS_G4DN,
    CostInputs,
    compare_costs,
    example_inputs,
    validate_inputs,
)
from medalist.errors import UserError

MIXED = CostInputs(
    hours=400.0,
    months=4.0,
    price=1500.0,
    power_per_100h=12.0,
    hourly_rate=0.9,
    monthly_fee=50.0,
    monthly_hours=150.0,
)


def _break_even(result, between):
    return next(b for b in result.break_even if b.between == between)


def test_rtx4060ti_vs_g4dn_example_is_the_published_figures():
    c = example_inputs("rtx4060ti-vs-g4dn")
    assert (c.price, c.power_per_100h, c.hourly_rate * 100) == (250_000, 1_000, 8_000)
    assert c.currency == "yen"


def test_owned_machine_costs_the_same_as_hourly_cloud_at_the_break_even_hours():
    hours = _break_even(compare_costs(RTX4060TI_VS_G4DN), "owned vs hourly cloud").hours

    at_even = compare_costs(replace(RTX4060TI_VS_G4DN, hours=hours))
    owned, hourly = at_even.option("owned machine"), at_even.option("hourly cloud")
    assert math.isclose(owned.total, hourly.total, rel_tol=1e-9)
    later = compare_costs(replace(RTX4060TI_VS_G4DN, hours=hours * 1.1))
    assert later.option("owned machine").total < later.option("hourly cloud").total


def test_cost_per_100_hours_is_the_total_scaled_to_100_hours():
    result = compare_costs(MIXED)
    for opt in result.options:
        assert math.isclose(opt.per_100h, opt.total / MIXED.hours * 100)
    assert math.isclose(result.option("hourly cloud").per_100h, MIXED.hourly_rate * 100)
    assert math.isclose(result.option("monthly cloud").total, MIXED.monthly_fee * MIXED.months)


def test_owned_vs_monthly_break_even_is_where_the_totals_meet_at_the_same_pace():
    even = _break_even(compare_costs(MIXED), "owned vs monthly cloud").hours
    pace = MIXED.hours / MIXED.months
    at_even = compare_costs(replace(MIXED, hours=even, months=even / pace))
    assert math.isclose(
        at_even.option("owned machine").total, at_even.option("monthly cloud").total
    )


def test_monthly_plan_pays_off_above_fee_over_hourly_rate_hours_a_month():
    pace = _break_even(compare_costs(MIXED), "hourly vs monthly cloud").hours
    just_above = compare_costs(replace(MIXED, hours=pace * 1.01, months=1))
    assert just_above.option("monthly cloud").total < just_above.option("hourly cloud").total
    just_below = compare_costs(replace(MIXED, hours=pace * 0.99, months=1))
    assert just_below.option("monthly cloud").total > just_below.option("hourly cloud").total


def test_monthly_plan_beyond_its_hour_limit_says_it_cannot_cover_the_hours():
    result = compare_costs(replace(MIXED, hours=1000.0, months=2.0))  # 500 h a month > 150

    monthly = result.option("monthly cloud")
    assert monthly.total is None and monthly.per_100h is None
    assert "can't cover" in monthly.note
    assert _break_even(result, "owned vs monthly cloud").hours is None


def test_currency_neutral_scaling_every_price_keeps_the_break_even_hours():
    scaled = replace(
        MIXED,
        price=MIXED.price * 150,
        power_per_100h=MIXED.power_per_100h * 150,
        hourly_rate=MIXED.hourly_rate * 150,
        monthly_fee=MIXED.monthly_fee * 150,
    )
    a, b = compare_costs(MIXED), compare_costs(scaled)
    for x, y in zip(a.break_even, b.break_even, strict=True):
        assert x.between == y.between and math.isclose(x.hours, y.hours)
    for x, y in zip(a.options, b.options, strict=True):
        assert math.isclose(y.total, x.total * 150)


@pytest.mark.parametrize(
    "change",
    [
        {"hours": 0.0},
        {"hours": -5.0},
        {"months": 0.0},
        {"price": 0.0},
        {"price": -100.0},
        {"power_per_100h": -1.0},
        {"hourly_rate": 0.0},
        {"monthly_fee": -1.0},
        {"monthly_hours": 0.0},
        {"hourly_rate": float("nan")},
        {"price": None},  # power without a price
        {"power_per_100h": None},  # a price without power
    ],
)
def test_bad_inputs_are_user_errors(change):
    with pytest.raises(UserError):
        validate_inputs(replace(MIXED, **change))


def test_one_option_alone_is_nothing_to_compare():
    with pytest.raises(UserError, match="at least two"):
        compare_costs(CostInputs(hourly_rate=1.0))


def test_cli_prints_the_example_costs_per_100_hours_and_break_even():
    r = medalist("cost", "--example", "rtx4060ti-vs-g4dn")
    assert r.returncode == 0, r.stderr
    assert "per 100 h" in r.stdout
    hours = _break_even(compare_costs(RTX4060TI_VS_G4DN), "owned vs hourly cloud").hours
    assert f"{hours:,.0f} hours" in r.stdout
    assert "8,000 yen" in r.stdout


def test_cli_with_no_prices_prints_the_example_instead_of_an_error():
    plain = medalist("cost")
    assert plain.returncode == 0, plain.stderr
    assert plain.stdout == medalist("cost", "--example", "rtx4060ti-vs-g4dn").stdout
    assert "8,000 yen" in plain.stdout
    longer = medalist("cost", "--hours", "500")
    assert longer.returncode == 0, longer.stderr
    assert "500 hours of experiments" in longer.stdout and "40,000 yen" in longer.stdout


def test_cli_options_override_the_example():
    r = medalist(
        "cost", "--example", "rtx4060ti-vs-g4dn", "--monthly", "5000", "--monthly-hours", "200"
    )
    assert r.returncode == 0, r.stderr
    assert "monthly cloud" in r.stdout and "can't cover" not in r.stdout


@pytest.mark.parametrize(
    "args, named",
    [
        (["--hourly", "-1", "--price", "10", "--power", "0"], "--hourly"),
        (["--example", "rtx4060ti-vs-g4dn", "--hours", "0"], "--hours"),
        (["--hours", "0"], "--hours"),
        (["--example", "nope"], "--example"),
        (["--hourly", "2"], "--price"),
    ],
)
def test_cli_bad_input_exits_2_with_one_line(args, named):
    r = medalist("cost", *args)
    assert r.returncode == 2
    assert named in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert "Traceback" not in r.stderr
