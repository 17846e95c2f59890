"""Tracker signatures the tests look for, written independently of rules/: what a
browser would fetch or run from Google Analytics/Tag Manager/Ads, Facebook, X/Twitter,
LinkedIn and well-known web-bug hosts."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from urllib.parse import urlsplit

from proxy.consent.standins import ABSORBING
from proxy.ui import surrogates

HOSTS = (
    "google-analytics.com",
    "googletagmanager.com",
    "doubleclick.net",
    "googlesyndication.com",
    "googleadservices.com",
    "googletagservices.com",
    "connect.facebook.net",
    "facebook.com",
    "platform.twitter.com",
    "static.ads-twitter.com",
    "analytics.twitter.com",
    "snap.licdn.com",
    "platform.linkedin.com",
    "px.ads.linkedin.com",
    "quantserve.com",
    "scorecardresearch.com",
)
SNIPPETS = (
    "quantserve.com/",
    "scorecardresearch.com/",
    "fbevents.js",
    "fbds.js",
    "GoogleAnalyticsObject",
    "_gaq.push",
    "google-analytics.com/ga.js",
    "google-analytics.com/analytics.js",
    "googletagmanager.com/gtm.js",
    "gtag('config'",
    'gtag("config"',
    "fbq(",
    "connect.facebook.net",
    "platform.twitter.com/widgets.js",
    "adsbygoogle",
    "googletag.cmd",
    "_linkedin_partner_id",
    "static.ads-twitter.com",
)


def tracker_host(url: str | None) -> bool:
    if not url:
        return False
    url = url.strip()
    if url.startswith("//"):
        url = "http:" + url
    try:
        host = (urlsplit(url).hostname or "").lower()
    except ValueError:
        return False
    return any(host == h or host.endswith("." + h) for h in HOSTS)


def our_surrogate(el: ET.Element) -> bool:
    """A script the proxy put in: marked as a surrogate and exactly one's text."""
    name = el.get("data-consent-surrogate")
    if name == ABSORBING:  # the absorbing stand-in (proxy/consent/cuts.py)
        return el.text == surrogates.absorbing().text
    return name in surrogates.available() and el.text == surrogates.load(name).text


def leaks(root: ET.Element) -> list[str]:
    """Every element in an html5lib tree that would load or run a tracker."""
    found = []
    for el in root.iter():
        if not isinstance(el.tag, str):
            continue
        tag = el.tag.lower()
        if tag == "script":
            if el.get("type", "").lower().startswith("in/"):
                continue  # an inert LinkedIn marker, not code
            if our_surrogate(el):
                continue  # the proxy's no-op stand-in: it names the API, loads nothing
            if tracker_host(el.get("src")) or any(s in (el.text or "") for s in SNIPPETS):
                found.append(f"<script src={el.get('src')!r}> {(el.text or '')[:60]!r}")
        elif tag in ("iframe", "img", "embed", "source") and (
            tracker_host(el.get("src")) or tracker_host(el.get("data-src"))
        ):
            found.append(f"<{tag} src={el.get('src')!r}>")
        elif tag == "object" and tracker_host(el.get("data")):
            found.append(f"<object data={el.get('data')!r}>")
        elif (
            tag == "link"
            and tracker_host(el.get("href"))
            and {"preconnect", "dns-prefetch", "preload", "prefetch", "stylesheet"}
            & set(el.get("rel", "").lower().split())
        ):
            found.append(f"<link rel={el.get('rel')!r} href={el.get('href')!r}>")
        # A Facebook plugin's <div class="fb-like"> loads nothing by itself: the SDK
        # (a script, judged above) turns it into an iframe, as widgets.js an X post.
    return found
