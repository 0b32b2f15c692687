"""Generate the synthetic multi-channel marketing data of the kpiforge demo project.

    python examples/demo/generate.py --out examples/demo/data [--seed 42]

Thirteen months of a fictional online shop, 2025-10-01 to 2026-10-31 (Europe/Paris), so that
"last month" is 2026-10 and it can be compared with 2026-09 and with 2025-10. Everything comes
from one seeded numpy generator and is written in a fixed order with fixed formatting, so two
runs with the same seed give byte-for-byte identical files (as long as the pyarrow version that
writes the Parquet footer is the same).

The data is invented but shaped like the real thing: weekly and yearly seasonality (Black Friday
and Christmas peaks, an August trough), slow growth, channels with very different click-through,
bounce and conversion rates, and one deliberate incident: in October 2026 the paid-social
creatives wear out (CTR and conversions of ``social`` drop), so month-over-month changes show.
"""

from __future__ import annotations

import argparse
import sys
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

START = date(2025, 10, 1)
END = date(2026, 10, 31)
TIMEZONE = "Europe/Paris"
INCIDENT_MONTH = "2026-10"  # paid social creative fatigue
LAST_INSTANT = pd.Timestamp("2026-11-01", tz=TIMEZONE).tz_convert("UTC") - pd.Timedelta(seconds=1)

# Yearly shape of demand by calendar month (1 = an average month).
SEASON = {1: 0.92, 2: 0.90, 3: 0.98, 4: 1.00, 5: 1.00, 6: 0.96, 7: 0.86, 8: 0.74,
          9: 1.00, 10: 1.02, 11: 1.22, 12: 1.30}
# Monday .. Sunday: a consumer shop, busier at the weekend.
WEEKDAY = np.array([1.00, 0.97, 0.98, 1.00, 1.03, 1.05, 1.02])
GROWTH_PER_MONTH = 0.012

# channel, campaign, daily impressions at an average day, CTR, CPC (EUR)
CAMPAIGNS = [
    ("search", "brand", 1_000, 0.090, 0.55),
    ("search", "generic", 3_800, 0.034, 2.30),
    ("search", "shopping", 4_200, 0.019, 1.45),
    ("social", "prospecting", 9_500, 0.0085, 0.90),
    ("social", "retargeting", 2_200, 0.0190, 1.10),
    ("display", "prospecting", 12_000, 0.0033, 0.70),
    ("display", "retargeting", 4_000, 0.0078, 0.95),
    ("video", "awareness", 5_000, 0.0055, 0.45),
    # email: impressions are delivered emails; newsletters go out twice a week (see below)
    ("email", "newsletter", 24_000, 0.024, 0.07),
    ("email", "winback", 1_500, 0.015, 0.12),
]
EMAIL_SEND_WEEKDAYS = {1, 4}  # Tuesday and Friday
# ad-platform frequency (impressions per reached person in a month), per channel
FREQUENCY = {"search": 1.9, "social": 2.8, "display": 5.6, "video": 3.3, "email": 8.7}
LANDING_RATE = 0.86  # share of ad clicks that become a tracked session

# channel, source, sessions on an average day (for ad channels: the paid ones come from clicks)
ORGANIC_TRAFFIC = [
    ("search", "organic", 330.0),
    ("social", "organic", 70.0),
    ("referral", "organic", 75.0),
    ("direct", "direct", 190.0),
]
CHANNELS = ["search", "social", "display", "video", "email", "referral", "direct"]
# per channel: bounce probability, orders per session, leads per non-bounced session,
# share of sessions landing on content (blog/guides), mean order value (EUR)
BEHAVIOUR = {
    "search":   (0.37, 0.028, 0.050, 0.30, 71.0),
    "social":   (0.52, 0.019, 0.045, 0.25, 58.0),
    "display":  (0.66, 0.006, 0.020, 0.10, 55.0),
    "video":    (0.73, 0.004, 0.015, 0.08, 52.0),
    "email":    (0.30, 0.036, 0.030, 0.35, 82.0),
    "referral": (0.45, 0.019, 0.040, 0.45, 66.0),
    "direct":   (0.39, 0.031, 0.025, 0.05, 74.0),
}
DEVICES = np.array(["mobile", "desktop", "tablet"])
DEVICE_P = [0.61, 0.34, 0.05]

INITIAL_CUSTOMERS = 7_200  # customers before the data starts (ids below this)
# probability that an order comes from a first-time customer, per channel
NEW_CUSTOMER_P = {"search": 0.42, "social": 0.55, "display": 0.62, "video": 0.65, "email": 0.06,
                  "referral": 0.45, "direct": 0.18}
INITIAL_VISITORS = 60_000  # known visitors before the data starts


def months() -> pd.PeriodIndex:
    return pd.period_range(START, END, freq="M")


def day_factors(days: pd.DatetimeIndex, rng: np.random.Generator) -> np.ndarray:
    """Demand multiplier per day: season x weekday x growth x noise, plus Black Friday week."""
    month, year = days.month.to_numpy(), days.year.to_numpy()
    season = np.array([SEASON[m] for m in month])
    weekday = WEEKDAY[days.day_of_week.to_numpy()]
    growth = (1 + GROWTH_PER_MONTH) ** ((year - START.year) * 12 + month - START.month)
    factor = season * weekday * growth * rng.lognormal(0.0, 0.06, len(days))
    black_friday = np.asarray((days >= "2025-11-24") & (days <= "2025-12-01"))
    factor[black_friday] *= 1.6
    return factor


def generate_ads(days: pd.DatetimeIndex, factor: np.ndarray, rng: np.random.Generator) -> pd.DataFrame:
    incident = np.asarray(days.strftime("%Y-%m") == INCIDENT_MONTH)
    frames = []
    for channel, campaign, impressions, ctr, cpc in CAMPAIGNS:
        base = impressions * factor
        if channel == "email":
            sends = np.isin(days.day_of_week.to_numpy(), list(EMAIL_SEND_WEEKDAYS))
            if campaign == "newsletter":  # the whole list on send days, nothing otherwise
                base = np.where(sends, impressions * (factor / factor.mean()) ** 0.3, 0.0)
        imps = rng.poisson(base)
        daily_ctr = ctr * rng.lognormal(0.0, 0.07, len(days))
        if channel == "social":
            daily_ctr = np.where(incident, daily_ctr * 0.55, daily_ctr)
        clicks = rng.binomial(imps, np.clip(daily_ctr, 0, 1))
        # bidding is per impression on social/display/video: worse CTR means dearer clicks
        if channel in ("social", "display", "video"):
            cost = imps * ctr * cpc * rng.lognormal(0.0, 0.05, len(days))
        else:
            cost = clicks * cpc * rng.lognormal(0.0, 0.05, len(days))
        frames.append(pd.DataFrame({
            "date": days.strftime("%Y-%m-%d"), "channel": channel, "campaign": campaign,
            "impressions": imps, "clicks": clicks, "spend": np.round(cost, 2)}))
    ads = pd.concat(frames, ignore_index=True)
    ads = ads[ads["impressions"] > 0]
    return ads.sort_values(["date", "channel", "campaign"], kind="stable").reset_index(drop=True)


def generate_reach(ads: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    monthly = (ads.assign(month=ads["date"].str[:7] + "-01")
               .groupby(["month", "channel"], sort=True)["impressions"].sum().reset_index())
    frequency = monthly["channel"].map(FREQUENCY) * rng.lognormal(0.0, 0.04, len(monthly))
    monthly["reach"] = np.round(monthly["impressions"] / frequency).astype(np.int64)
    return monthly[["month", "channel", "reach"]]


def _local_to_utc(local: pd.Series) -> pd.Series:
    # DST: the spring-forward gap moves forward; an autumn wall time is taken as winter time.
    return (local.dt.tz_localize(TIMEZONE, ambiguous=np.zeros(len(local), dtype=bool),
                                 nonexistent="shift_forward").dt.tz_convert("UTC"))


def generate_sessions(days: pd.DatetimeIndex, factor: np.ndarray, ads: pd.DataFrame,
                      rng: np.random.Generator) -> pd.DataFrame:
    day_index = {d: i for i, d in enumerate(days.strftime("%Y-%m-%d"))}
    parts_day, parts_channel, parts_source, parts_campaign = [], [], [], []
    # paid (and email) sessions: the ad clicks that landed
    landed = rng.binomial(ads["clicks"].to_numpy(), LANDING_RATE)
    ads_day = ads["date"].map(day_index).to_numpy()
    parts_day.append(np.repeat(ads_day, landed))
    parts_channel.append(np.repeat(ads["channel"].to_numpy(), landed))
    parts_source.append(np.repeat(np.where(ads["channel"] == "email", "owned", "paid"), landed))
    parts_campaign.append(np.repeat(ads["campaign"].to_numpy(), landed))
    for channel, source, per_day in ORGANIC_TRAFFIC:
        counts = rng.poisson(per_day * factor)
        parts_day.append(np.repeat(np.arange(len(days)), counts))
        parts_channel.append(np.full(counts.sum(), channel, dtype=object))
        parts_source.append(np.full(counts.sum(), source, dtype=object))
        parts_campaign.append(np.full(counts.sum(), "(none)", dtype=object))
    day = np.concatenate(parts_day)
    channel = np.concatenate(parts_channel).astype(object)
    source = np.concatenate(parts_source).astype(object)
    campaign = np.concatenate(parts_campaign).astype(object)
    # a local wall-clock time of day: quiet at night, peaks at lunch and in the evening
    hour_weight = np.array([2, 1, 1, 1, 1, 2, 3, 5, 6, 6, 6, 7, 8, 7, 6, 6, 6, 7, 8, 9, 10, 9, 6, 4], float)
    hour = rng.choice(24, size=len(day), p=hour_weight / hour_weight.sum())
    seconds = hour * 3600 + rng.integers(0, 3600, len(day))
    order = np.lexsort((seconds, day))
    day, channel, source, campaign, seconds = (a[order] for a in (day, channel, source, campaign, seconds))
    n = len(day)
    local = pd.Series(days[day]) + pd.to_timedelta(seconds, unit="s")
    started_at = _local_to_utc(local)

    # visitors: a returning visitor is anyone seen before (or known before the data starts)
    is_new = rng.random(n) < 0.62
    seen_before = INITIAL_VISITORS + np.cumsum(is_new) - is_new
    visitor = np.where(is_new, seen_before, (rng.random(n) * seen_before).astype(np.int64))

    props = np.array([BEHAVIOUR[c] for c in channel])
    bounce_p, order_p, lead_p, content_p, _ = props.T
    device = DEVICES[rng.choice(3, size=n, p=DEVICE_P)]
    bounce_p = np.where(device == "mobile", np.minimum(bounce_p * 1.08, 0.95), bounce_p * 0.9)
    bounced = rng.random(n) < bounce_p
    pages = np.where(bounced, 1, 2 + rng.geometric(0.36, n) - 1)
    duration = np.where(bounced, rng.integers(0, 30, n),
                        np.round(pages * rng.lognormal(np.log(48.0), 0.55, n))).astype(np.int32)
    content_view = rng.random(n) < content_p
    content_conversion = content_view & ~bounced & (rng.random(n) < 0.055)
    lead = ~bounced & (rng.random(n) < lead_p)
    month = pd.Series(days[day]).dt.strftime("%Y-%m").to_numpy()
    social_incident = (channel == "social") & (month == INCIDENT_MONTH)
    order_p = np.where(social_incident, order_p * 0.6, order_p)
    ordered = ~bounced & (rng.random(n) < order_p / (1 - np.minimum(bounce_p, 0.95)))
    return pd.DataFrame({
        "session_id": np.arange(1, n + 1, dtype=np.int64),
        "started_at": started_at,
        "visitor_id": visitor.astype(np.int64),
        "channel": channel.astype(str),
        "source": source.astype(str),
        "campaign": campaign.astype(str),
        "device": device.astype(str),
        "pages": pages.astype(np.int16),
        "duration_s": duration,
        "bounced": bounced.astype(np.int8),
        "content_view": content_view.astype(np.int8),
        "content_conversion": content_conversion.astype(np.int8),
        "lead": lead.astype(np.int8),
        "_ordered": ordered,
    })


def generate_orders(sessions: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    s = sessions[sessions["_ordered"]].reset_index(drop=True)
    n = len(s)
    mean_value = s["channel"].map({c: v[4] for c, v in BEHAVIOUR.items()}).to_numpy()
    # Black Friday to Christmas: more orders, smaller baskets
    local = s["started_at"].dt.tz_convert(TIMEZONE)
    promo = ((local.dt.month == 11) & (local.dt.day >= 24)) | (local.dt.month == 12)
    mean_value = np.where(promo.to_numpy(), mean_value * 0.88, mean_value)
    sigma = 0.55
    amount = np.round(mean_value * rng.lognormal(-sigma**2 / 2, sigma, n), 2)
    checkout = pd.to_timedelta(np.maximum(s["duration_s"].to_numpy(), 30), unit="s")
    # Customers are not visitors: a visitor may be an existing customer on a new device.
    # Whether the buyer is new depends on the channel (email reaches customers, display
    # reaches strangers); a returning buyer is any customer known at that point.
    new_p = s["channel"].map(NEW_CUSTOMER_P).to_numpy()
    is_new = rng.random(n) < new_p
    known = INITIAL_CUSTOMERS + np.cumsum(is_new) - is_new
    customer = np.where(is_new, known, (rng.random(n) * known).astype(np.int64))
    refunded = rng.random(n) < np.where(s["channel"] == "display", 0.08, 0.035)
    return pd.DataFrame({
        "order_id": [f"O{i:07d}" for i in range(1, n + 1)],
        # a checkout never runs past the last day: "the latest period with data" stays 2026-10
        "ordered_at": (s["started_at"] + checkout).clip(upper=LAST_INSTANT),
        "customer_id": [f"C{v:07d}" for v in customer],
        "channel": s["channel"],
        "amount": amount,
        "status": np.where(refunded, "refunded", "paid"),
        "is_new_customer": is_new,
        "marketing_attributed": s["source"].isin(["paid", "owned"]).to_numpy()
        | (s["channel"] == "social").to_numpy(),
    })


def generate_customer_base(orders: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """The CRM's monthly snapshot: new customers are the first orders in the shop data."""
    month = orders["ordered_at"].dt.tz_convert(TIMEZONE).dt.strftime("%Y-%m")
    paid_new = orders["is_new_customer"] & (orders["status"] == "paid")
    new = paid_new.groupby(month).sum()
    rows, start = [], INITIAL_CUSTOMERS
    for period in months():
        key = str(period)
        churn_p = 0.036 * rng.lognormal(0.0, 0.08) * (1.35 if key == INCIDENT_MONTH else 1.0)
        lost = int(rng.binomial(start, churn_p))
        n_new = int(new.get(key, 0))
        end = start + n_new - lost
        rows.append({"month": f"{key}-01", "customers_start": start, "new_customers": n_new,
                     "customers_lost": lost, "customers_end": end})
        start = end
    return pd.DataFrame(rows)


def generate_finance(ads: pd.DataFrame, orders: pd.DataFrame, base: pd.DataFrame,
                     rng: np.random.Generator) -> pd.DataFrame:
    media = ads.assign(month=ads["date"].str[:7]).groupby("month")["spend"].sum()
    paid = orders[orders["status"] == "paid"]
    revenue = paid.groupby(paid["ordered_at"].dt.tz_convert(TIMEZONE).dt.strftime("%Y-%m"))["amount"].sum()
    rows = []
    for _, row in base.iterrows():
        key = row["month"][:7]
        team = 9_500 * rng.lognormal(0.0, 0.03)  # salaries, agency fees, tools
        margin = 0.46 - (0.04 if key[5:] in ("11", "12") else 0.0) + rng.normal(0.0, 0.005)
        customers = (row["customers_start"] + row["customers_end"]) / 2
        rows.append({"month": row["month"],
                     "sales_marketing_cost": round(media.get(key, 0.0) + team, 2),
                     "gross_margin": round(margin, 4),
                     "revenue_per_customer": round(revenue.get(key, 0.0) / customers, 2)})
    return pd.DataFrame(rows)


def generate_surveys(days: pd.DatetimeIndex, rng: np.random.Generator) -> pd.DataFrame:
    incident = np.asarray(days.strftime("%Y-%m") == INCIDENT_MONTH)
    nps_counts = rng.poisson(12, len(days))
    csat_counts = rng.poisson(10, len(days))
    nps_day = np.repeat(np.arange(len(days)), nps_counts)
    csat_day = np.repeat(np.arange(len(days)), csat_counts)
    # NPS 0-10: promoters (9-10) ~46 %, detractors (0-6) ~20 %; worse during the incident
    nps_p = np.array([1, 1, 1, 2, 2, 4, 9, 16, 18, 24, 22], float)
    nps_bad = np.array([2, 1, 2, 3, 3, 6, 10, 17, 17, 21, 18], float)
    scores = np.where(incident[nps_day],
                      rng.choice(11, len(nps_day), p=nps_bad / nps_bad.sum()),
                      rng.choice(11, len(nps_day), p=nps_p / nps_p.sum()))
    csat_p = np.array([4, 6, 11, 34, 45], float)
    csat = rng.choice(5, len(csat_day), p=csat_p / csat_p.sum()) + 1
    survey = pd.DataFrame({
        "responded_on": np.concatenate([days[nps_day].strftime("%Y-%m-%d"),
                                        days[csat_day].strftime("%Y-%m-%d")]),
        "survey": ["nps"] * len(nps_day) + ["csat"] * len(csat_day),
        "score": np.concatenate([scores, csat]).astype(np.int64),
    })
    survey = survey.sort_values(["responded_on", "survey"], kind="stable").reset_index(drop=True)
    survey.insert(0, "response_id", np.arange(1, len(survey) + 1))
    return survey


def generate_mentions(days: pd.DatetimeIndex, factor: np.ndarray, rng: np.random.Generator) -> pd.DataFrame:
    counts = rng.poisson(46 * factor)
    day = np.repeat(np.arange(len(days)), counts)
    platforms = np.array(["x", "instagram", "tiktok", "reddit", "news", "forums"])
    platform = platforms[rng.choice(6, len(day), p=[0.30, 0.25, 0.15, 0.12, 0.08, 0.10])]
    sentiments = np.array(["positive", "neutral", "negative"])
    # forums and reddit are where people complain
    negative = np.isin(platform, ["reddit", "forums"])
    p_pos = np.where(negative, 0.45, 0.64)
    p_neg = np.where(negative, 0.22, 0.09)
    u = rng.random(len(day))
    sentiment = sentiments[np.where(u < p_pos, 0, np.where(u < p_pos + p_neg, 2, 1))]
    return pd.DataFrame({"mention_id": np.arange(1, len(day) + 1),
                         "mentioned_on": days[day].strftime("%Y-%m-%d"),
                         "platform": platform, "sentiment": sentiment})


def generate_social(days: pd.DatetimeIndex, factor: np.ndarray, rng: np.random.Generator) -> pd.DataFrame:
    net_adds = rng.normal(38, 25, len(days)) * factor
    followers = np.round(41_250 + np.cumsum(net_adds)).astype(np.int64)
    posts = rng.poisson(2.2, len(days))
    likes = rng.poisson(np.maximum(posts, 0.3) * 310 * factor)
    return pd.DataFrame({"date": days.strftime("%Y-%m-%d"), "followers": followers,
                         "posts": posts, "likes": likes})


def generate_seo(days: pd.DatetimeIndex, rng: np.random.Generator) -> pd.DataFrame:
    groups = [("brand", 12, 1.3), ("product", 70, 9.0), ("informational", 68, 17.0)]
    mondays = days[days.day_of_week == 0]
    frames = []
    for group, count, start in groups:
        for k in range(count):
            keyword = f"{group}-{k + 1:03d}"
            level = start * rng.lognormal(0.0, 0.35)
            # slow improvement from content work, plus weekly noise
            walk = level * np.exp(np.cumsum(rng.normal(-0.004, 0.05, len(mondays))))
            position = np.clip(np.round(walk), 1, 100).astype(np.int64)
            frames.append(pd.DataFrame({"checked_on": mondays.strftime("%Y-%m-%d"),
                                        "keyword": keyword, "keyword_group": group,
                                        "position": position}))
    seo = pd.concat(frames, ignore_index=True)
    return seo.sort_values(["checked_on", "keyword"], kind="stable").reset_index(drop=True)


def write_csv(frame: pd.DataFrame, path: Path) -> None:
    frame.to_csv(path, index=False, lineterminator="\n", float_format="%.10g")


def write_parquet(frame: pd.DataFrame, path: Path) -> None:
    # pyarrow directly (no pandas metadata) and no statistics timestamps: reproducible bytes
    table = pa.Table.from_pandas(frame, preserve_index=False).replace_schema_metadata(None)
    pq.write_table(table, path, compression="zstd", row_group_size=256_000)


def generate(out: Path, seed: int = 42) -> dict[str, int]:
    rng = np.random.default_rng(seed)
    days = pd.date_range(START, END, freq="D")
    factor = day_factors(days, rng)
    ads = generate_ads(days, factor, rng)
    reach = generate_reach(ads, rng)
    sessions = generate_sessions(days, factor, ads, rng)
    orders = generate_orders(sessions, rng)
    sessions = sessions.drop(columns="_ordered")
    base = generate_customer_base(orders, rng)
    finance = generate_finance(ads, orders, base, rng)
    surveys = generate_surveys(days, rng)
    mentions = generate_mentions(days, factor, rng)
    social = generate_social(days, factor, rng)
    seo = generate_seo(days, rng)

    out.mkdir(parents=True, exist_ok=True)
    year = ads["date"].str[:4]
    files: dict[str, pd.DataFrame] = {}
    for y in sorted(year.unique()):  # one file per year: the project reads them with a glob
        files[f"ads_{y}.csv"] = ads[year == y]
    files.update({
        "ad_reach_monthly.csv": reach,
        "sessions.parquet": sessions,
        "orders.parquet": orders,
        "customer_base_monthly.csv": base,
        "finance_monthly.csv": finance,
        "survey_responses.csv": surveys,
        "brand_mentions.csv": mentions,
        "social_daily.csv": social,
        "seo_rankings.csv": seo,
    })
    for name, frame in files.items():
        if name.endswith(".parquet"):
            write_parquet(frame, out / name)
        else:
            write_csv(frame, out / name)
    return {name: len(frame) for name, frame in files.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "data",
                        help="output folder (default: data/ next to this script)")
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args(argv)
    counts = generate(args.out, args.seed)
    for name, rows in counts.items():
        print(f"{args.out / name}: {rows:,} rows")
    return 0


if __name__ == "__main__":
    sys.exit(main())
