// Steward privacy center: small enhancements; every page works without them.
(function () {
  "use strict";
  // Countdown to the end of an erasure's waiting period.
  document.querySelectorAll("[data-countdown]").forEach(function (el) {
    var end = Date.parse(el.getAttribute("data-countdown"));
    var out = el.parentNode.querySelector(".countdown");
    if (!out || isNaN(end)) return;
    function tick() {
      var s = Math.max(0, Math.round((end - Date.now()) / 1000));
      var h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
      out.textContent = " (in " + (h ? h + " h " : "") + (h || m ? m + " min " : "") + r + " s)";
      if (s === 0) { clearInterval(timer); setTimeout(function () { location.reload(); }, 1500); }
    }
    var timer = setInterval(tick, 1000);
    tick();
  });
  // Pages waiting for a queued export look again every few seconds.
  var poll = document.querySelector("[data-poll]");
  if (poll) {
    setTimeout(function () { location.reload(); }, 1000 * (parseInt(poll.getAttribute("data-poll"), 10) || 3));
  }
})();
