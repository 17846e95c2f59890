/* consent-proxy surrogate: Meta (Facebook) Pixel, fbq() accepted and dropped, nothing sent */
(w => {
  const f = w.fbq;
  if (f && f.callMethod) return; // the real fbevents.js, or this one
  // The pixel's own snippet (if it ran) calls callMethod once that exists: keep its function.
  const n = f || (w.fbq = function () { n.callMethod.apply(n, arguments); });
  w._fbq = w._fbq || n;
  // No fbq command takes a callback: every one (init, track, trackCustom, trackSingle,
  // consent, set, dataProcessingOptions, ...) is a no-op.
  Object.assign(n, { callMethod() {}, push: n, loaded: true, version: "2.0", queue: [] });
})(window);
