// The statistics page: a uPlot chart over each series' table (the tables are the data, and
// what a page without JavaScript shows), kept current by the project's live WebSocket
// (`<project>/stats/live`). A socket the server drops (a slow client) reconnects and reloads
// every figure from the page's CSV, so nothing missed meanwhile stays wrong.
(function () {
  'use strict';
  var root = document.getElementById('stats');
  if (!root) return;
  var interval = root.dataset.interval;
  var project = root.dataset.project;
  var status = root.querySelector('.stats-status');
  var HEIGHT = 180;
  var INTEGER_STEPS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1e3, 2e3, 5e3, 1e4, 2e4, 5e4,
    1e5, 2e5, 5e5, 1e6, 2e6, 5e6, 1e7];
  var charts = {};

  function setStatus(text) {
    if (status) status.textContent = text;
  }

  // One series: its section, points (oldest first) and chart.
  function Series(section) {
    this.section = section;
    this.name = section.dataset.series;
    this.peak = section.dataset.agg === 'max';
    this.tbody = section.querySelector('tbody');
    this.figure = section.querySelector('[data-figure]');
    this.points = [];
    var rows = this.tbody.querySelectorAll('tr[data-t]');
    for (var i = 0; i < rows.length; i++) {
      var cell = rows[i].querySelector('td');
      this.points.push({ t: Number(rows[i].dataset.t), v: Number(cell.textContent), row: rows[i] });
    }
    this.points.sort(function (a, b) { return a.t - b.t; });
    this.chart = null;
  }

  Series.prototype.data = function () {
    return [
      this.points.map(function (p) { return p.t / 1000; }),
      this.points.map(function (p) { return p.v; }),
    ];
  };

  Series.prototype.draw = function () {
    if (typeof uPlot === 'undefined') return;
    var el = this.section.querySelector('.stats-chart');
    var label = this.section.querySelector('h3').textContent;
    var opts = {
      width: Math.max(200, el.clientWidth),
      height: HEIGHT,
      legend: { show: false },
      cursor: { drag: { x: false, y: false } },
      scales: {
        x: { time: true },
        y: { range: function (u, min, max) { return [0, Math.max(1, max)]; } },
      },
      series: [
        {},
        {
          label: label,
          stroke: '#2f6feb',
          fill: 'rgba(47, 111, 235, 0.12)',
          width: 2,
          points: { show: this.points.length <= 40 },
        },
      ],
      // Counts: whole-number steps on the value axis.
      axes: [{}, { size: 48, incrs: INTEGER_STEPS }],
    };
    this.chart = new uPlot(opts, this.data(), el);
  };

  Series.prototype.resize = function () {
    if (!this.chart) return;
    var el = this.section.querySelector('.stats-chart');
    this.chart.setSize({ width: Math.max(200, el.clientWidth), height: HEIGHT });
  };

  // A row for a day or month after the last one shown (the page stayed open past midnight).
  Series.prototype.newRow = function (t) {
    var row = document.createElement('tr');
    row.dataset.t = String(t);
    var th = document.createElement('th');
    th.scope = 'row';
    var d = new Date(t).toISOString();
    th.textContent = interval === 'month' ? d.slice(0, 7) : d.slice(0, 10);
    var td = document.createElement('td');
    td.textContent = '0';
    row.appendChild(th);
    row.appendChild(td);
    this.tbody.insertBefore(row, this.tbody.firstChild);
    return row;
  };

  // Sets the value at `t`; false when `t` is before the range shown.
  Series.prototype.set = function (t, v) {
    var p = null;
    for (var i = this.points.length - 1; i >= 0; i--) {
      if (this.points[i].t === t) { p = this.points[i]; break; }
    }
    if (!p) {
      var last = this.points[this.points.length - 1];
      if (last && t < last.t) return false;
      p = { t: t, v: 0, row: this.newRow(t) };
      this.points.push(p);
    }
    if (p.v === v) return true;
    p.v = v;
    p.row.querySelector('td').textContent = String(v);
    p.row.classList.remove('stats-changed');
    void p.row.offsetWidth; // restart the highlight
    p.row.classList.add('stats-changed');
    return true;
  };

  Series.prototype.refresh = function () {
    var values = this.points.map(function (p) { return p.v; });
    var figure = this.peak
      ? values.reduce(function (a, b) { return Math.max(a, b); }, 0)
      : values.reduce(function (a, b) { return a + b; }, 0);
    this.figure.textContent = String(figure);
    if (this.chart) this.chart.setData(this.data());
  };

  var sections = root.querySelectorAll('section[data-series]');
  for (var i = 0; i < sections.length; i++) {
    var s = new Series(sections[i]);
    charts[s.name] = s;
  }

  function drawAll() {
    Object.keys(charts).forEach(function (k) {
      try { charts[k].draw(); } catch (e) { /* the table still shows the figures */ }
    });
  }

  var resizeTimer = null;
  window.addEventListener('resize', function () {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(function () {
      Object.keys(charts).forEach(function (k) { charts[k].resize(); });
    }, 150);
  });

  function apply(u) {
    if (!u || u.project !== project || u.interval !== interval) return;
    var s = charts[u.series];
    if (!s) return;
    if (s.set(Number(u.t), Number(u.v))) s.refresh();
  }

  // Every figure again, from the page's CSV (after a reconnection).
  function reload() {
    return fetch(root.dataset.csv, { credentials: 'same-origin' })
      .then(function (res) { return res.ok ? res.text() : ''; })
      .then(function (text) {
        var lines = text.trim().split('\n');
        if (lines.length < 2) return;
        var head = lines[0].split(',');
        for (var i = 1; i < lines.length; i++) {
          var cols = lines[i].split(',');
          var t = Date.parse(cols[0] + 'T00:00:00Z');
          for (var j = 1; j < head.length; j++) {
            var s = charts[head[j]];
            if (s) s.set(t, Number(cols[j]));
          }
        }
        Object.keys(charts).forEach(function (k) { charts[k].refresh(); });
      })
      .catch(function () { /* the next reconnection tries again */ });
  }

  var delay = 1000;
  var dropped = false;
  function connect() {
    if (!('WebSocket' in window)) return;
    var scheme = location.protocol === 'https:' ? 'wss://' : 'ws://';
    var ws = new WebSocket(scheme + location.host + root.dataset.live);
    ws.onopen = function () {
      delay = 1000;
      setStatus('Live: figures update as they change.');
      root.setAttribute('data-live-state', 'open');
      if (dropped) reload();
    };
    ws.onmessage = function (ev) {
      try { apply(JSON.parse(ev.data)); } catch (e) { /* not an update */ }
    };
    ws.onclose = function () {
      dropped = true;
      root.setAttribute('data-live-state', 'closed');
      setStatus('Live updates paused; reconnecting…');
      setTimeout(connect, delay);
      delay = Math.min(delay * 2, 30000);
    };
  }

  drawAll();
  connect();
})();
