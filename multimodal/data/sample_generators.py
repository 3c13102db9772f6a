"""The three sample datasets' generators: latent variables, drawings and oracle scores.

Each dataset is driven by a few latent variables drawn from a seeded numpy Generator; the images
are drawn with numpy and Pillow, so the same seed always gives the same bytes. An oracle reports
what a model that saw the latent variables themselves could reach per branch. The registry and
the writer live in samples.py. Streamlit-free and TensorFlow-free.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from PIL import Image, ImageDraw

Images = dict[str, np.ndarray]  # relative path -> HxWx3 uint8
Latents = dict[str, np.ndarray]


# ----------------------------------------------------------------------------- helpers
def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _finish(img: np.ndarray, size: int, rng: np.random.Generator, noise: float = 1.0) -> np.ndarray:
    """Downsample a supersampled float image to ``size`` and add mild grey noise.

    The noise is quantised to steps of 2, shared by the channels and constant on 2x2 blocks, which
    keeps the PNGs small (per-pixel noise would double the size of sample_data/).
    """
    small = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).resize((size, size), Image.BOX)
    half = (size + 1) // 2
    blocks = np.round(rng.normal(0.0, noise, (half, half, 1))) * 2
    arr = np.asarray(small, np.float32) + blocks.repeat(2, 0).repeat(2, 1)[:size, :size]
    return np.clip(arr, 0, 255).astype(np.uint8)


def _onehot(values: np.ndarray, k: int) -> np.ndarray:
    return np.eye(k)[values][:, 1:]


def _logistic_accuracy(x: np.ndarray, y: np.ndarray) -> float:
    """Fit logistic regression (Newton/IRLS) on the first half, return accuracy on the second."""
    x = np.column_stack([np.ones(len(x)), (x - x.mean(0)) / (x.std(0) + 1e-12)])
    half = len(x) // 2
    xt, yt, w = x[:half], y[:half].astype(float), np.zeros(x.shape[1])
    for _ in range(30):
        p = _sigmoid(xt @ w)
        hess = (xt * (p * (1 - p))[:, None]).T @ xt + np.eye(len(w))  # tiny ridge: separable data
        step = np.linalg.solve(hess, xt.T @ (p - yt) + w)
        w -= step
        if np.abs(step).max() < 1e-7:
            break
    return float(np.mean((x[half:] @ w > 0) == y[half:]))


def _ols_r2(x: np.ndarray, y: np.ndarray) -> float:
    """Least squares fit on the first half, R^2 on the second half."""
    x = np.column_stack([np.ones(len(x)), x])
    half = len(x) // 2
    w, *_ = np.linalg.lstsq(x[:half], y[:half], rcond=None)
    resid = y[half:] - x[half:] @ w
    return float(1 - resid.var() / y[half:].var())


def _with_missing(rng: np.random.Generator, values: np.ndarray, frac: float) -> np.ndarray:
    out = values.astype(float if values.dtype.kind in "iuf" else object)
    out[rng.random(len(out)) < frac] = np.nan
    return out


# ----------------------------------------------------------------------------- skin lesions
SITES = np.array(["back", "chest", "arm", "leg", "face", "scalp"])
SKIN_TONES = np.array([[236, 200, 172], [224, 180, 145], [198, 150, 115], [160, 112, 80]], float)


def _skin_latents(rng: np.random.Generator, n: int) -> Latents:
    age = np.clip(rng.normal(52, 16, n), 18, 90)
    family = (rng.random(n) < 0.25).astype(int)
    sex = rng.integers(0, 2, n)
    site = rng.choice(len(SITES), n, p=[0.3, 0.15, 0.2, 0.2, 0.1, 0.05])
    irr_z = rng.normal(size=n)
    score = irr_z + (age - 52) / 16 + 0.6 * (family - 0.25) + rng.normal(0, 0.5, n)
    return dict(age=age, family=family, sex=sex, site=site, irr_z=irr_z, y=(score > 0).astype(int))


def _draw_lesion(rng: np.random.Generator, irr: float, size: int) -> np.ndarray:
    """Skin background with one lesion; ``irr`` in [0, 1] sets border irregularity and colours."""
    n = 2 * size
    yy, xx = (np.mgrid[0:n, 0:n] + 0.5) / n
    tone = SKIN_TONES[rng.integers(len(SKIN_TONES))] + rng.normal(0, 5, 3)
    grad = rng.normal(0, 12, 2)
    img = tone + (grad[0] * (xx - 0.5) + grad[1] * (yy - 0.5))[..., None]
    cx, cy = 0.5 + rng.normal(0, 0.04, 2)
    radius, dx, dy = rng.uniform(0.17, 0.28), xx - cx, yy - cy
    rho, theta = np.hypot(dx, dy), np.arctan2(dy, dx)
    ks = np.arange(2, 10)
    amp = (0.04 + 0.16 * irr) * rng.uniform(0.3, 1.0, ks.size) / np.sqrt(ks - 1.0)
    amp[0] += 0.08 * rng.random()  # any lesion may be a little oval
    phase = rng.uniform(0, 2 * np.pi, ks.size)
    wobble = (amp[:, None, None] * np.cos(ks[:, None, None] * theta + phase[:, None, None])).sum(0)
    border = radius * np.maximum(1 + wobble, 0.35)
    soft = 0.012 + 0.012 * rng.random()
    mask = np.clip(0.5 + (border - rho) / soft, 0, 1)[..., None]
    base = np.array([125, 82, 58.0]) * rng.uniform(0.7, 1.1)
    lesion = base * (1 - 0.25 * np.clip(1 - rho / radius, 0, 1))[..., None]  # darker centre
    for color in ([45, 30, 28], [165, 70, 62], [95, 100, 128], [190, 150, 120]):
        bumps = np.zeros_like(rho)
        for _ in range(2):
            bx, by = cx + rng.normal(0, radius / 2, 2)
            bumps += np.exp(-((xx - bx) ** 2 + (yy - by) ** 2) / (2 * (radius * rng.uniform(0.2, 0.45)) ** 2))
        weight = np.clip(irr * 1.4 * bumps * rng.uniform(0.5, 1.0) - 0.1, 0, 0.85)[..., None]
        lesion = lesion * (1 - weight) + np.array(color, float) * weight
    return _finish(img * (1 - mask) + lesion * mask, size, rng, noise=1.0)


def skin_generator(rng: np.random.Generator, n: int, size: int) -> tuple[pd.DataFrame, Images]:
    lat = _skin_latents(rng, n)
    irregularity = _sigmoid(1.7 * lat["irr_z"])
    images = {f"images/{i + 1:04d}.png": _draw_lesion(rng, irregularity[i], size) for i in range(n)}
    return pd.DataFrame({
        "id": np.arange(1, n + 1), "image": list(images), "age": _with_missing(rng, np.round(lat["age"], 1), 0.03),
        "sex": np.array(["F", "M"])[lat["sex"]], "site": _with_missing(rng, SITES[lat["site"]], 0.03),
        "family_history": np.array(["no", "yes"])[lat["family"]],
        "diagnosis": np.array(["benign", "malignant"])[lat["y"]]}), images


def skin_oracle(rng: np.random.Generator) -> dict[str, float]:
    lat = _skin_latents(rng, 100_000)
    tab = np.column_stack([lat["age"], lat["family"], lat["sex"], _onehot(lat["site"], len(SITES))])
    return {"image only (irregularity)": _logistic_accuracy(lat["irr_z"][:, None], lat["y"]),
            "tabular only (age, sex, site, family_history)": _logistic_accuracy(tab, lat["y"]),
            "both": _logistic_accuracy(np.column_stack([tab, lat["irr_z"]]), lat["y"])}


# ----------------------------------------------------------------------------- house prices
ZIPCODES = np.array(["98101", "98102", "98103", "98104", "98105", "98106"])
ZIP_EFFECT = np.array([0.35, 0.15, 0.0, -0.12, -0.28, 0.45])
WALLS = np.array([[205, 175, 135], [175, 190, 205], [220, 210, 175], [180, 105, 85], [235, 235, 228]], float)
ROOFS = np.array([[125, 50, 40], [70, 72, 82], [95, 62, 45]], float)


# The facade's condition moves the price a little; most of it is location, size and luck. A weak,
# noisy photo signal on a few hundred rows is the setting where naive fusion overfits the photo and
# loses to the table alone (issue 7's "trap"); the defaults must still not lose to it.
HOUSE_PHOTO_EFFECT = 0.05   # log-price change per std of facade quality
HOUSE_NOISE = 0.20          # std of what neither the table nor the photo explains (log price)


def _house_latents(rng: np.random.Generator, n: int) -> Latents:
    zips = rng.integers(0, len(ZIPCODES), n)
    area = np.round(np.clip(np.exp(rng.normal(np.log(1800), 0.35, n)), 500, 6000), -1)
    bedrooms = np.clip(np.round(area / 600 + rng.normal(0, 0.7, n)), 1, 6).astype(int)
    bathrooms = np.clip(np.round(2 * (0.5 + 0.45 * bedrooms + rng.normal(0, 0.4, n))) / 2, 1, 4)
    quality = rng.normal(size=n)
    log_price = (12.6 + ZIP_EFFECT[zips] + 0.85 * np.log(area / 1800) + 0.04 * (bathrooms - 2)
                 + HOUSE_PHOTO_EFFECT * quality + rng.normal(0, HOUSE_NOISE, n))
    return dict(zips=zips, area=area, bedrooms=bedrooms, bathrooms=bathrooms, quality=quality,
                log_price=log_price)


def _draw_house(rng: np.random.Generator, quality: float, size: int) -> np.ndarray:
    """A house facade; good ``quality`` = fresh walls, intact roof, clean windows."""
    n, fresh = 2 * size, float(_sigmoid(1.6 * quality))
    sky = np.array([[170, 200, 232], [188, 204, 216], [150, 186, 226]], float)[rng.integers(3)]
    yy = np.linspace(0, 1, n)[:, None, None]
    img = Image.fromarray(np.broadcast_to(sky - 35 * yy, (n, n, 3)).astype(np.uint8))
    draw = ImageDraw.Draw(img)
    px = lambda *v: [round(t * n) for t in v]  # noqa: E731 - unit coords -> pixels
    rgb = lambda c: tuple(int(t) for t in np.clip(c, 0, 255))  # noqa: E731
    draw.rectangle(px(0, 0.84, 1, 1), fill=rgb([92, 142, 72] + rng.normal(0, 8, 3)))
    x0, x1 = rng.uniform(0.1, 0.22), 1 - rng.uniform(0.1, 0.22)
    top, bottom = rng.uniform(0.44, 0.54), 0.86
    wall = WALLS[rng.integers(len(WALLS))]
    wall = fresh * wall + (1 - fresh) * (0.5 * wall + 0.5 * np.array([125, 115, 98]))
    draw.rectangle(px(x0, top, x1, bottom), fill=rgb(wall))
    for _ in range(rng.poisson(4 * (1 - fresh) ** 2)):  # stains and damp patches
        sx, sy, r = rng.uniform(x0, x1), rng.uniform(top, bottom), rng.uniform(0.03, 0.07)
        draw.ellipse(px(sx - r, sy - r / 2, sx + r, sy + r), fill=rgb(wall * 0.72))
    roof = ROOFS[rng.integers(len(ROOFS))] * (0.75 + 0.25 * fresh)
    apex = top - rng.uniform(0.2, 0.28)
    corners = [(x0 - 0.05, top), ((x0 + x1) / 2, apex), (x1 + 0.05, top)]
    draw.polygon([tuple(px(*c)) for c in corners], fill=rgb(roof))
    for _ in range(rng.binomial(4, (1 - fresh) ** 1.5)):  # holes in a broken roof
        hx, hy = rng.uniform(x0 + 0.1, x1 - 0.1), rng.uniform(apex + 0.08, top - 0.03)
        draw.ellipse(px(hx - 0.03, hy - 0.025, hx + 0.03, hy + 0.025), fill=(38, 32, 30))
    slots = rng.integers(3, 6)
    door, width = rng.integers(slots), (x1 - x0) / slots
    for s in range(slots):
        cx = x0 + (s + 0.5) * width
        if s == door:
            draw.rectangle(px(cx - 0.045, bottom - 0.17, cx + 0.045, bottom), fill=rgb(ROOFS[rng.integers(3)] * 0.9))
            continue
        box = px(cx - width * 0.3, top + 0.08, cx + width * 0.3, top + 0.2)
        if rng.random() < 0.9 * (1 - fresh) ** 1.3:  # boarded-up window
            draw.rectangle(box, fill=(112, 84, 55))
            draw.line([box[0], box[1], box[2], box[3]], fill=(70, 50, 35), width=max(1, n // 40))
        else:
            draw.rectangle(box, fill=(185, 212, 236), outline=(245, 245, 245), width=max(1, n // 64))
            draw.line([(box[0] + box[2]) // 2, box[1], (box[0] + box[2]) // 2, box[3]], fill=(245, 245, 245))
    return _finish(np.asarray(img, np.float32), size, rng, noise=0.5)


def house_generator(rng: np.random.Generator, n: int, size: int) -> tuple[pd.DataFrame, Images]:
    lat = _house_latents(rng, n)
    images = {f"images/{i + 1:04d}.png": _draw_house(rng, lat["quality"][i], size) for i in range(n)}
    return pd.DataFrame({
        "id": np.arange(1, n + 1), "photo": list(images), "area_sqft": lat["area"].astype(int),
        "bedrooms": lat["bedrooms"], "bathrooms": lat["bathrooms"], "zipcode": ZIPCODES[lat["zips"]],
        "price": (np.round(np.exp(lat["log_price"]), -3)).astype(int)}), images


def house_oracle(rng: np.random.Generator) -> dict[str, float]:
    lat = _house_latents(rng, 100_000)
    tab = np.column_stack([np.log(lat["area"]), lat["bedrooms"], lat["bathrooms"],
                           _onehot(lat["zips"], len(ZIPCODES))])
    y = lat["log_price"]
    return {"image only (quality), R2 of log price": _ols_r2(lat["quality"][:, None], y),
            "tabular only (area, rooms, zipcode), R2 of log price": _ols_r2(tab, y),
            "both, R2 of log price": _ols_r2(np.column_stack([tab, lat["quality"]]), y)}


# ----------------------------------------------------------------------------- growth sequences
FRAMES = 4


def _growth_latents(rng: np.random.Generator, n: int) -> Latents:
    age = rng.uniform(20, 85, n)
    sex = rng.integers(0, 2, n)
    y = (rng.random(n) < _sigmoid(0.5 * (age - 52.5) / 18.8)).astype(int)  # 1 = growing
    radii = 0.1 + rng.uniform(0, 0.1, (n, 1)) + np.cumsum(rng.uniform(0.035, 0.07, (n, FRAMES)), 1) - 0.035
    radii = np.where(y[:, None] == 1, radii, radii[:, ::-1])  # same multiset, order carries the label
    return dict(age=age, sex=sex, y=y, radii=radii)


def _draw_blob(rng: np.random.Generator, radius: float, shape: dict, size: int) -> np.ndarray:
    n = 2 * size
    yy, xx = (np.mgrid[0:n, 0:n] + 0.5) / n
    dx, dy = xx - shape["cx"] - rng.normal(0, 0.008), yy - shape["cy"] - rng.normal(0, 0.008)
    theta = np.arctan2(dy, dx)
    border = radius * (1 + shape["amp"] * np.cos(2 * theta + shape["phase"]) + 0.05 * np.cos(3 * theta))
    mask = np.clip(0.5 + (border - np.hypot(dx, dy)) / 0.015, 0, 1)[..., None]
    return _finish(shape["bg"] * (1 - mask) + shape["fg"] * mask, size, rng, noise=0.5)


def growth_generator(rng: np.random.Generator, n: int, size: int) -> tuple[pd.DataFrame, Images]:
    lat = _growth_latents(rng, n)
    images: Images = {}
    cols: dict[str, list[str]] = {f"frame_{k + 1}": [] for k in range(FRAMES)}
    for i in range(n):
        shape = dict(cx=0.5 + rng.normal(0, 0.025), cy=0.5 + rng.normal(0, 0.025),
                     amp=rng.uniform(0, 0.12), phase=rng.uniform(0, np.pi),
                     bg=np.array([222, 212, 196.0]) + rng.normal(0, 6, 3),
                     fg=np.array([92, 64, 58.0]) * rng.uniform(0.6, 1.2))
        for k in range(FRAMES):
            path = f"images/{i + 1:04d}_{k + 1}.png"
            images[path] = _draw_blob(rng, lat["radii"][i, k], shape, size)
            cols[f"frame_{k + 1}"].append(path)
    df = pd.DataFrame({"id": np.arange(1, n + 1), **cols, "age": np.round(lat["age"]).astype(int),
                       "sex": np.array(["F", "M"])[lat["sex"]],
                       "trend": np.array(["shrinking", "growing"])[lat["y"]]})
    return df, images


def growth_oracle(rng: np.random.Generator) -> dict[str, float]:
    lat = _growth_latents(rng, 100_000)
    r, tab = lat["radii"], np.column_stack([lat["age"], lat["sex"]])
    order = (r[:, -1] - r[:, 0])[:, None]
    return {"image sequence in order (last minus first size)": _logistic_accuracy(order, lat["y"]),
            "images without order (the sorted sizes)": _logistic_accuracy(np.sort(r, 1), lat["y"]),
            "tabular only (age, sex)": _logistic_accuracy(tab, lat["y"]),
            "both (ordered sequence + tabular)": _logistic_accuracy(np.column_stack([tab, order]), lat["y"])}

