/* consent-proxy surrogate: Google Publisher Tag (googletag), no ad requested, slots render empty */
(w => {
  const g = (w.googletag = w.googletag || {});
  if (g.apiReady) return; // the real GPT, or this one
  // Methods not listed (setTargeting, addService, enableSingleRequest, ...) return their object.
  const chain = o => { const p = new Proxy(o, { get: (t, k) => k in t || typeof k != "string" || k == "then" ? t[k] : () => p }); return p; };
  const slots = [], listeners = [];
  let lazy = false, collapse = false;
  // What GPT reports for a slot that got no ad: slotRenderEnded with isEmpty.
  const render = s => setTimeout(() => {
    const el = document.getElementById(s.getSlotElementId());
    if (el && (collapse || s.collapse)) el.style.display = "none";
    for (const [t, f] of listeners) if (t == "slotRenderEnded") f({ isEmpty: true, slot: s, size: null, serviceName: "publisher_ads", slotContentChanged: false });
  });
  const slot = (path, div) => {
    const s = chain({
      getAdUnitPath: () => path, getSlotElementId: () => div, getSlotId: () => ({ getId: () => path + "_0", getDomId: () => div }),
      getSizes: () => [], getTargeting: () => [], getTargetingKeys: () => [], getResponseInformation: () => null,
      collapse: false, setCollapseEmptyDiv: c => ((s.collapse = c), s),
    });
    slots.push(s);
    return s;
  };
  const pubads = chain({
    addEventListener: (t, f) => (listeners.push([t, f]), pubads),
    collapseEmptyDivs: () => ((collapse = true), pubads),
    disableInitialLoad: () => ((lazy = true), pubads),
    isInitialLoadDisabled: () => lazy,
    refresh: list => (list || slots).forEach(render),
    getSlots: () => slots.slice(), getTargeting: () => [], getTargetingKeys: () => [],
  });
  const queued = [].concat(g.cmd || []);
  const run = f => { try { f(); } catch (e) { setTimeout(() => { throw e; }); } };
  Object.assign(g, {
    apiReady: true, pubadsReady: true,
    pubads: () => pubads, companionAds: () => chain({}), content: () => chain({}),
    defineSlot: (path, size, div) => slot(path, div),
    defineOutOfPageSlot: (path, div) => slot(path, typeof div == "string" ? div : null),
    display: x => lazy || slots.forEach(s => (s == x || s.getSlotElementId() == ((x && x.id) || x)) && render(s)),
    destroySlots: list => ((list || slots.slice()).forEach(s => slots.includes(s) && slots.splice(slots.indexOf(s), 1)), true),
    sizeMapping: () => chain({ build: () => [] }),
    enableServices() {}, setConfig() {}, getVersion: () => "",
    enums: { OutOfPageFormat: { TOP_ANCHOR: 1, BOTTOM_ANCHOR: 2, REWARDED: 3, INTERSTITIAL: 4, LEFT_SIDE_RAIL: 5, RIGHT_SIDE_RAIL: 6 } },
    // Functions pushed from now on run at once; push returns how many ran, as GPT's does.
    cmd: { push: (...f) => f.filter(x => typeof x == "function").map(run).length },
  });
  queued.forEach(run);
})(window);
