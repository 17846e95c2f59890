/* consent-proxy surrogate: Google Analytics (analytics.js, ga.js, gtag.js) as no-ops that send nothing */
(w => {
  const later = (f, a = []) => typeof f == "function" && setTimeout(() => f(...a));
  const d = (document.currentScript || {}).dataset || {};
  // analytics.js under the page's name for it; a loaded library (or this one) stays.
  const G = w.GoogleAnalyticsObject || d.name || "ga", old = w[G];
  if (!(old && old.loaded)) {
    // Any tracker exists: the page's 'create' may be what the proxy removed.
    const all = {}, tracker = (n = "t0") => all[n] || (all[n] = ((hit) => ({
      get: f => f == "name" ? n : undefined,
      set: (f, v) => { if (f == "hitCallback") hit = v; else if (f && typeof f == "object" && "hitCallback" in f) hit = f.hitCallback; },
      send: (...a) => later(a.reduce((cb, x) => (x && x.hitCallback) || cb, hit)),
    }))());
    // create(trackingId, cookieDomain, name, fields) or create(fields)
    const create = (...a) => tracker((a.find(x => x && x.name) || {}).name || (typeof a[2] == "string" ? a[2] : undefined));
    const ga = (c, ...a) => {
      if (typeof c == "function") return later(c, [tracker()]);
      const [m, n] = String(c).split(".").reverse(), t = tracker(n);
      if (m == "create") create(...a);
      else if (m == "send" || m == "set") t[m](...a);
    };
    Object.assign(ga, {
      loaded: true, remove() {}, getByName: tracker,
      create,
      getAll: () => (tracker(), Object.values(all)),
    });
    w[G] = ga;
    ((old && old.q) || []).forEach(a => ga(...a));
  }
  // ga.js: _gaq command arrays and functions, _gat trackers taking any _method.
  if (!(w._gaq && w._gaq._getAsyncTracker)) {
    const all = {}, tracker = (n = "", hit) => all[n] || (all[n] = new Proxy({}, {
      get: (o, k) => k in o || k[0] != "_" ? o[k] : (f, v) => {
        if (k == "_set" && f == "hitCallback") hit = v;
        else if (k == "_getLinkerUrl") return f;
        else if (k == "_link") location.href = f; // the page's link waits for this
        else if (k.startsWith("_track")) later(hit);
      },
    }));
    const run = c => {
      if (typeof c == "function") return c();
      const [m, n] = String(c[0]).split(".").reverse();
      tracker(n)[m](...c.slice(1));
    };
    const queued = [].concat(w._gaq || []), mk = (a, n) => tracker(n);
    w._gaq = {
      _getAsyncTracker: tracker, _createAsyncTracker: mk,
      push: (...c) => c.filter(x => { try { run(x); } catch (e) { return true; } }).length,
    };
    w._gat = w._gat || { _getTracker: mk, _createTracker: mk, _getTrackerByName: tracker, _anonymizeIp() {} };
    w._gaq.push(...queued);
  }
  // gtag.js: commands go to the data layer; their callbacks run here.
  const L = d.layer || "dataLayer", dl = (w[L] = w[L] || []), push = [].push;
  if (typeof w.gtag != "function") w.gtag = function () { w[L].push(arguments); };
  const handle = e => {
    if (Object.prototype.toString.call(e) == "[object Arguments]") {
      if (e[0] == "event" && e[2]) later(e[2].event_callback || e[2].eventCallback);
      else if (e[0] == "get") later(e[3]);
    } else if (e) later(e.eventCallback, [d.id]);
  };
  // A push that is not Array's own belongs to the real tag, or to gtm.js.
  if (dl.push === push) {
    dl.push = function (...a) { a.forEach(handle); return push.apply(this, a); };
    [...dl].forEach(handle);
  }
})(window);
