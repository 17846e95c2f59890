/* consent-proxy surrogate: AdSense (adsbygoogle), no ad requested, units marked unfilled */
(w => {
  const a = (w.adsbygoogle = w.adsbygoogle || []);
  if (a.loaded) return; // the real library, or this one
  const later = (f, x) => typeof f == "function" && setTimeout(() => f(x));
  const handle = o => {
    if (!o || typeof o != "object") return;
    later(o.onReady); // adConfig({onReady})
    if (o.type) { // adBreak({type, adBreakDone}): no ad, so only adBreakDone runs
      later(o.adBreakDone, { breakType: o.type, breakName: o.name || "", breakFormat: o.type == "reward" ? "reward" : "interstitial", breakStatus: "other" });
    } else if (o.element || !Object.keys(o).length) {
      // push({}) is an ad unit: mark the next one as AdSense marks a unit it could not fill.
      const ins = o.element || document.querySelector("ins.adsbygoogle:not([data-adsbygoogle-status])");
      if (ins) { ins.setAttribute("data-adsbygoogle-status", "done"); ins.setAttribute("data-ad-status", "unfilled"); }
    }
  };
  const queued = [...a];
  a.length = 0;
  a.loaded = true;
  a.push = (...o) => { o.forEach(x => { try { handle(x); } catch (e) {} }); return 0; };
  a.push(...queued);
})(window);
