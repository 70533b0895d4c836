// ganga_like's web view: follow the page's live stream and swap in what changed.
// The server renders every piece (the same functions as the page); this only places it.
"use strict";
(function () {
  const url = document.body.dataset.live;
  const conn = document.getElementById("conn");
  if (!url || !window.EventSource) {
    return;
  }
  const stream = new EventSource(url);
  stream.onmessage = function (event) {
    const pieces = JSON.parse(event.data);
    for (const [id, html] of Object.entries(pieces)) {
      const element = document.getElementById(id);
      if (element && element.outerHTML !== html) {
        element.outerHTML = html;
      }
    }
    conn.textContent = "live";
    conn.className = "conn";
  };
  stream.addEventListener("gone", function (event) {
    // What the page shows is no longer there (a job removed meanwhile): stop following it.
    stream.close();
    conn.textContent = event.data;
    conn.className = "conn lost";
  });
  stream.onerror = function () {
    // The service stopped or restarted: the stream tries again by itself.
    conn.textContent = "reconnecting…";
    conn.className = "conn lost";
  };
})();
