/* consent-proxy surrogate: Google Tag Manager's data layer, callbacks run, nothing loaded or sent */
(w => {
  const later = (f, a = []) => typeof f == "function" && setTimeout(() => f(...a));
  // data-layer names a custom layer (gtm.js?l=NAME); data-id the container, passed to eventCallback.
  const d = (document.currentScript || {}).dataset || {};
  const L = d.layer || "dataLayer", dl = (w[L] = w[L] || []), push = [].push;
  const handle = e => {
    if (Object.prototype.toString.call(e) == "[object Arguments]") { // gtag(...)
      if (e[0] == "event" && e[2]) later(e[2].event_callback || e[2].eventCallback);
      else if (e[0] == "get") later(e[3]);
    } else if (e) later(e.eventCallback, [d.id]); // once, eventTimeout or not
  };
  // A push that is not Array's own belongs to the real container, or to ga.js.
  if (dl.push === push) {
    dl.push = function (...a) { a.forEach(handle); return push.apply(this, a); };
    [...dl].forEach(handle);
  }
})(window);
