"""Synthetic pages for the leak test: every element form Chromium contacts a host for,
written in hostile ways, and infrastructure on the domains the catalogue narrows."""

from __future__ import annotations

from tests.consent.test_catalogue_forms import INFRASTRUCTURE, NARROWED

TRACKER = "cdn.taboola.com"  # a host only the catalogue knows (no hand-written rule)
# The element forms Chromium contacts a host for, in a few hostile ways of writing the
# URL; a page of them is loaded with the corpus pages. (<base> and a refresh <meta>
# are left to the rewriter's tests: they would send the direct load elsewhere.)
WAYS = (
    "https://{h}/{n}",
    "//{H}/{n}",
    "https:\\\\{h}\\{n}",
    "https:{h}/{n}",
    "https://{a}&#9;{b}/{n}",
    "https://{a}&Tab;{b}/{n}",
    "&#x2F;/{h}/{n}",
)
FORM_PAGE_FORMS = (
    "<img src='{u}' alt=''>",
    "<img src='/own.png' srcset='/own2.png 2x, {u} 3x' alt=''>",
    "<img srcset='{u}' alt=''>",
    "<picture><source srcset='{u}'><img src='/own.png' alt=''></picture>",
    "<svg><image href='{u}'/></svg>",
    "<svg><image xlink:href='{u}'/></svg>",
    "<svg><script href='{u}'></script></svg>",
    "<input type=image src='{u}' alt=''>",
    "<link rel=stylesheet href='{u}'>",
    "<link rel=preload as=image href='{u}'>",
    "<link rel=icon href='{u}'>",
    "<video poster='{u}'></video>",
    "<video src='{u}'></video>",
    "<audio src='{u}'></audio>",
    "<embed src='{u}'>",
    "<object data='{u}'></object>",
    "<iframe src='{u}'></iframe>",
    '<iframe srcdoc="<img src=&quot;{u}&quot;>"></iframe>',
    "<script src='{u}'></script>",
    "<div style='width:9px;height:9px;background:url({u})'></div>",
    "<style>.{n}{{width:9px;height:9px;background:url({u})}}</style><div class={n}></div>",
    "<table background='{u}'><tr><td>x</td></tr></table>",
    "<script>var i = new Image(); i.src = '{u}';</script>",
)


def forms_page() -> bytes:
    """Every form above in every way, each URL with a path of its own."""
    half = len(TRACKER) // 2
    parts = ["<!doctype html><html><head><title>Forms</title></head><body><h1>Forms</h1>"]
    for i, form in enumerate(FORM_PAGE_FORMS):
        for j, way in enumerate(WAYS):
            url = way.format(
                h=TRACKER, H=TRACKER.upper(), a=TRACKER[:half], b=TRACKER[half:], n=f"f{i}w{j}"
            )
            parts.append(form.format(u=url, n=f"f{i}w{j}"))
    return ("".join(parts) + "</body></html>").encode()


def infrastructure_page() -> bytes:
    """Infrastructure on the domains the catalogue narrows, and their trackers."""
    body = "".join(INFRASTRUCTURE) + "".join(NARROWED)
    return (
        f"<!doctype html><html><head><title>CDNs</title></head><body>{body}</body></html>".encode()
    )


SYNTHETIC = {"forms.html": forms_page, "infrastructure.html": infrastructure_page}
