/* consent-proxy surrogate: X (Twitter) widgets.js, widgets not rendered, nothing loaded */
(w => {
  const t = (w.twttr = w.twttr || {});
  if (t.widgets) return; // the real widgets.js, or this one
  const later = (f, x) => typeof f == "function" && setTimeout(() => f(x));
  let bound = [];
  const fire = type => bound.forEach(([n, f]) => n == type && later(f, { type, widgets: [] }));
  // Factories resolve with no element, as they do for a widget that could not be rendered.
  const none = () => Promise.resolve();
  t.widgets = { load: () => (setTimeout(() => fire("loaded")), none()) };
  for (const k of ["Tweet", "Timeline", "FollowButton", "ShareButton", "HashtagButton", "MentionButton", "GridFromCollection", "Moment", "Video", "DMButton"]) t.widgets["create" + k] = none;
  t.events = { bind: (n, f) => bound.push([n, f]), unbind: (n, f) => (bound = bound.filter(b => b[0] != n || (f && b[1] != f))) };
  t.ready = f => later(f, t);
  (t._e || []).forEach(t.ready); // twttr.ready() calls made before widgets.js "loaded"
  t._e = [];
  t.widgets.load(); // widgets.js scans the page once it has loaded
})(window);
