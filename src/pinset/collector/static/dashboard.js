/* pinset collector dashboard.
 *
 * Plain script, no build step, no third-party code, nothing fetched from another
 * origin: charts are inline SVG drawn here. Data comes from the token-guarded JSON
 * API; the token is typed once (sessionStorage, this tab only) or passed as
 * /?token=… (stored, then removed from the address bar and history).
 *
 * Everything a report contains was written by whoever could reach POST /v1/report,
 * so report text is only ever inserted with textContent / setAttribute, never as
 * markup.
 */
(function () {
  "use strict";

  var TOKEN_KEY = "pinset-collector-token";
  var REFRESH_MS = 30000;
  var SVG_NS = "http://www.w3.org/2000/svg";
  // Okabe–Ito colours (distinguishable with the common colour-vision deficiencies),
  // each series also gets its own marker shape and dash pattern so colour is never
  // the only cue.
  var COLOURS = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#8C6D00", "#5E3C99", "#B2182B"];
  var DASHES = ["", "6 3", "2 3", "9 3 2 3", "", "6 3", "2 3", "9 3 2 3", "", "6 3"];
  var SHAPES = ["circle", "square", "triangle", "diamond", "triangle-down", "cross", "circle", "square", "triangle", "diamond"];
  var RANGES = {
    "24h": { seconds: 86400, bucket: "hour" },
    "7d": { seconds: 7 * 86400, bucket: "hour" },
    "30d": { seconds: 30 * 86400, bucket: "day" }
  };

  var state = {
    token: null,
    timer: null,
    cursors: [],     // cursors of the pages before the current one ("Newer" pops)
    cursor: null,    // the current page's cursor (null: newest page)
    nextCursor: null,
    filters: {},
    summary: null    // the last /v1/summary answer, redrawn when the window resizes
  };

  /* ---------- small DOM helpers ---------- */

  function $(id) { return document.getElementById(id); }

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    setAttrs(node, attrs);
    append(node, children);
    return node;
  }

  function svg(tag, attrs, children) {
    var node = document.createElementNS(SVG_NS, tag);
    setAttrs(node, attrs);
    append(node, children);
    return node;
  }

  function setAttrs(node, attrs) {
    if (!attrs) { return; }
    Object.keys(attrs).forEach(function (key) {
      var value = attrs[key];
      if (value === null || value === undefined || value === false) { return; }
      if (key === "text") { node.textContent = String(value); }
      else { node.setAttribute(key, String(value)); }
    });
  }

  function append(node, children) {
    if (children === null || children === undefined) { return; }
    if (!Array.isArray(children)) { children = [children]; }
    children.forEach(function (child) {
      if (child === null || child === undefined || child === false) { return; }
      node.appendChild(typeof child === "string" || typeof child === "number"
        ? document.createTextNode(String(child)) : child);
    });
  }

  function clear(node) { while (node.firstChild) { node.removeChild(node.firstChild); } }

  function fmtInt(n) { return Number(n || 0).toLocaleString("en-US"); }

  function pad2(n) { return (n < 10 ? "0" : "") + n; }

  function utcLabel(ms, withDate, withTime) {
    var d = new Date(ms);
    var date = d.getUTCFullYear() + "-" + pad2(d.getUTCMonth() + 1) + "-" + pad2(d.getUTCDate());
    var time = pad2(d.getUTCHours()) + ":" + pad2(d.getUTCMinutes());
    if (withDate && withTime) { return date + " " + time; }
    return withDate ? date : time;
  }

  function isoText(text) {
    if (!text) { return "—"; }
    return text.replace("T", " ").replace("Z", "");
  }

  /* ---------- token and API ---------- */

  function loadToken() {
    var params = new URLSearchParams(window.location.search);
    var fromUrl = params.get("token");
    if (fromUrl) {
      sessionStorage.setItem(TOKEN_KEY, fromUrl);
      params.delete("token");
      var rest = params.toString();
      // Do not leave the secret in the address bar, the history or a bookmark.
      history.replaceState(null, "", window.location.pathname + (rest ? "?" + rest : "") + window.location.hash);
    }
    return sessionStorage.getItem(TOKEN_KEY);
  }

  function ApiError(status, message) {
    this.status = status;
    this.message = message;
  }

  function api(path, params) {
    var query = new URLSearchParams();
    Object.keys(params || {}).forEach(function (key) {
      var value = params[key];
      if (value !== null && value !== undefined && value !== "") { query.set(key, value); }
    });
    var url = path + (query.toString() ? "?" + query.toString() : "");
    return fetch(url, {
      headers: { "Authorization": "Bearer " + state.token, "Accept": "application/json" },
      cache: "no-store",
      credentials: "omit"
    }).then(function (response) {
      return response.text().then(function (text) {
        var body = null;
        try { body = text ? JSON.parse(text) : null; } catch (e) { body = null; }
        if (!response.ok) {
          var detail = body && (body.detail || body.error) ? (body.detail || body.error) : response.statusText;
          if (typeof detail !== "string") { detail = JSON.stringify(detail); }
          throw new ApiError(response.status, path + ": " + response.status + " " + detail);
        }
        return body;
      });
    });
  }

  function setStatus(text, isError) {
    var node = $("status");
    node.textContent = text;
    node.className = "status" + (isError ? " error" : "");
  }

  /* ---------- charts ---------- */

  function niceStep(max, count) {
    var raw = Math.max(max, 1) / count;
    var power = Math.pow(10, Math.floor(Math.log10(raw)));
    var steps = [1, 2, 5, 10];
    for (var i = 0; i < steps.length; i++) {
      if (raw <= steps[i] * power) { return Math.max(1, steps[i] * power); }
    }
    return 10 * power;
  }

  function marker(shape, x, y, size, colour, attrs) {
    var s = size;
    // Filled shapes get a white outline; the cross is all outline.
    var paint = { fill: colour, stroke: "#fff", "stroke-width": 1 };
    var node;
    if (shape === "square") {
      node = svg("rect", { x: x - s, y: y - s, width: 2 * s, height: 2 * s });
    } else if (shape === "triangle") {
      node = svg("polygon", { points: [x, y - s * 1.2, x + s * 1.1, y + s * 0.9, x - s * 1.1, y + s * 0.9].join(" ") });
    } else if (shape === "triangle-down") {
      node = svg("polygon", { points: [x, y + s * 1.2, x + s * 1.1, y - s * 0.9, x - s * 1.1, y - s * 0.9].join(" ") });
    } else if (shape === "diamond") {
      node = svg("polygon", { points: [x, y - s * 1.3, x + s * 1.3, y, x, y + s * 1.3, x - s * 1.3, y].join(" ") });
    } else if (shape === "cross") {
      node = svg("path", { d: "M" + (x - s) + " " + (y - s) + "L" + (x + s) + " " + (y + s) + "M" + (x - s) + " " + (y + s) + "L" + (x + s) + " " + (y - s) });
      paint = { stroke: colour, fill: "none", "stroke-width": 2.5 };
    } else {
      node = svg("circle", { cx: x, cy: y, r: s });
    }
    setAttrs(node, paint);
    setAttrs(node, attrs);
    return node;
  }

  /* The k-th series' colour, dash pattern and marker shape (the chart and its legend agree). */
  function seriesStyle(k) {
    return { colour: COLOURS[k % COLOURS.length], dash: DASHES[k % DASHES.length] || null, shape: SHAPES[k % SHAPES.length] };
  }

  /* A multi-series line chart: series = [{name, values: [n per slot]}], slots = [epoch ms]. */
  function lineChart(container, opts) {
    clear(container);
    // Drawn at the container's pixel width (and redrawn on resize) so that text keeps
    // its size on a phone instead of shrinking with a fixed viewBox.
    var W = Math.max(300, Math.round(container.clientWidth || 760));
    var H = W < 560 ? 230 : 300, M = { top: 14, right: 16, bottom: 44, left: 52 };
    var iw = W - M.left - M.right, ih = H - M.top - M.bottom;
    var slots = opts.slots, series = opts.series;
    var max = 0;
    series.forEach(function (s) { s.values.forEach(function (v) { if (v > max) { max = v; } }); });
    var step = niceStep(max, 5);
    var top = Math.max(step, Math.ceil(max / step) * step);
    var x = function (i) { return M.left + (slots.length < 2 ? iw / 2 : (i * iw) / (slots.length - 1)); };
    var y = function (v) { return M.top + ih - (v / top) * ih; };
    var label = opts.title + ": " + (series.length ? series.map(function (s) {
      return s.name + " " + fmtInt(s.total) + " failures";
    }).join(", ") : "no failures");
    var root = svg("svg", { viewBox: "0 0 " + W + " " + H, role: "img", "aria-label": label, "data-chart": opts.id });
    root.appendChild(svg("title", { text: label }));

    var grid = svg("g", { "class": "tick" });
    for (var v = 0; v <= top; v += step) {
      grid.appendChild(svg("line", { "class": "grid", x1: M.left, x2: W - M.right, y1: y(v), y2: y(v) }));
      grid.appendChild(svg("text", { x: M.left - 6, y: y(v) + 4, "text-anchor": "end", text: fmtInt(v) }));
    }
    var every = Math.max(1, Math.ceil(slots.length / Math.max(3, Math.floor(iw / 90))));
    var daily = opts.bucket === "day";
    slots.forEach(function (ms, i) {
      if (i % every !== 0 && i !== slots.length - 1) { return; }
      if (i !== slots.length - 1 && slots.length - 1 - i < every / 2) { return; }
      var first = i === 0 || new Date(ms).getUTCHours() === 0;
      grid.appendChild(svg("line", { "class": "axis-line", x1: x(i), x2: x(i), y1: M.top + ih, y2: M.top + ih + 4 }));
      grid.appendChild(svg("text", { x: x(i), y: M.top + ih + 16, "text-anchor": "middle", text: daily ? utcLabel(ms, true, false).slice(5) : utcLabel(ms, false, true) }));
      if (!daily && first) {
        grid.appendChild(svg("text", { x: x(i), y: M.top + ih + 29, "text-anchor": "middle", text: utcLabel(ms, true, false).slice(5) }));
      }
    });
    root.appendChild(grid);
    root.appendChild(svg("g", { "class": "axis" }, [
      svg("line", { "class": "axis-line", x1: M.left, x2: M.left, y1: M.top, y2: M.top + ih }),
      svg("line", { "class": "axis-line", x1: M.left, x2: W - M.right, y1: M.top + ih, y2: M.top + ih }),
      svg("text", { x: 12, y: M.top + ih / 2, transform: "rotate(-90 12 " + (M.top + ih / 2) + ")", "text-anchor": "middle", text: opts.yLabel }),
      svg("text", { x: M.left + iw / 2, y: H - 4, "text-anchor": "middle", text: opts.xLabel })
    ]));

    if (!series.length) {
      root.appendChild(svg("text", { "class": "empty", x: M.left + iw / 2, y: M.top + ih / 2, "text-anchor": "middle", text: "No failures reported in this period." }));
    }
    series.forEach(function (s, k) {
      var style = seriesStyle(k);
      var group = svg("g", { "class": "series", "data-domain": s.name });
      var d = s.values.map(function (value, i) { return (i ? "L" : "M") + x(i).toFixed(1) + " " + y(value).toFixed(1); }).join("");
      group.appendChild(svg("path", { d: d, fill: "none", stroke: style.colour, "stroke-width": 2, "stroke-dasharray": style.dash, "stroke-linejoin": "round" }));
      s.values.forEach(function (value, i) {
        if (!value) { return; }
        var point = marker(style.shape, x(i), y(value), 4, style.colour, {
          "class": "point", "data-domain": s.name, "data-count": value, "data-start": new Date(slots[i]).toISOString()
        });
        point.appendChild(svg("title", { text: s.name + ": " + fmtInt(value) + " at " + utcLabel(slots[i], true, true) + " UTC" }));
        group.appendChild(point);
      });
      root.appendChild(group);
    });
    container.appendChild(root);
    container.appendChild(legend(series));
  }

  function legend(series) {
    var list = el("ul", { "class": "legend", "aria-label": "Legend" });
    series.forEach(function (s, k) {
      var style = seriesStyle(k);
      var swatch = svg("svg", { viewBox: "0 0 34 14", "aria-hidden": "true" }, [
        svg("line", { x1: 1, x2: 33, y1: 7, y2: 7, stroke: style.colour, "stroke-width": 2, "stroke-dasharray": style.dash }),
        marker(style.shape, 17, 7, 4, style.colour)
      ]);
      list.appendChild(el("li", { "data-domain": s.name }, [swatch, s.name + " (" + fmtInt(s.total) + ")"]));
    });
    return list;
  }

  /* A horizontal bar chart: items = [{label, value}]. */
  function barChart(container, opts) {
    clear(container);
    var items = opts.items.slice(0, 10);
    var rowH = 26, W = Math.max(260, Math.round(container.clientWidth || 420));
    var labelW = Math.min(170, Math.round(W * 0.38)), right = 56;
    var H = Math.max(1, items.length) * rowH + 8;
    var max = 0;
    items.forEach(function (it) { if (it.value > max) { max = it.value; } });
    var label = opts.title + ": " + (items.length ? items.map(function (it) { return it.label + " " + fmtInt(it.value); }).join(", ") : "none");
    var root = svg("svg", { viewBox: "0 0 " + W + " " + H, role: "img", "aria-label": label, "data-chart": opts.id });
    root.appendChild(svg("title", { text: label }));
    if (!items.length) {
      root.appendChild(svg("text", { "class": "empty", x: W / 2, y: 20, "text-anchor": "middle", text: "No failures reported in this period." }));
    }
    items.forEach(function (it, i) {
      var yTop = 4 + i * rowH;
      var width = max ? Math.max(2, ((W - labelW - right) * it.value) / max) : 0;
      var room = Math.floor(labelW / 7);
      var shown = it.label.length > room ? it.label.slice(0, room - 1) + "…" : it.label;
      root.appendChild(svg("g", { "class": "bar", "data-label": it.label, "data-count": it.value }, [
        svg("text", { x: labelW - 8, y: yTop + rowH / 2 + 4, "text-anchor": "end", "font-size": 12, fill: "#222", text: shown }),
        svg("rect", { x: labelW, y: yTop + 3, width: width, height: rowH - 8, fill: opts.colour || COLOURS[0], rx: 2 }, [
          svg("title", { text: it.label + ": " + fmtInt(it.value) })
        ]),
        svg("text", { x: labelW + width + 6, y: yTop + rowH / 2 + 4, "font-size": 12, fill: "#222", text: fmtInt(it.value) })
      ]));
    });
    container.appendChild(root);
  }

  /* ---------- summary ---------- */

  function slotsOf(summary) {
    var size = summary.bucket === "day" ? 86400000 : 3600000;
    var start = Math.floor(Date.parse(summary.since) / size) * size;
    var end = Date.parse(summary.until);
    var slots = [];
    for (var t = start; t < end; t += size) { slots.push(t); }
    return slots;
  }

  function renderSummary(summary) {
    state.summary = summary;
    var slots = slotsOf(summary);
    var index = {};
    slots.forEach(function (ms, i) { index[ms] = i; });
    var series = (summary.series || []).map(function (s) {
      var values = slots.map(function () { return 0; });
      var total = 0;
      (s.points || []).forEach(function (p) {
        var i = index[Date.parse(p.start)];
        if (i !== undefined) { values[i] += p.count; }
        total += p.count;
      });
      return { name: s.hostname, values: values, total: total };
    });
    lineChart($("chart-domains"), {
      id: "domains", title: "Failures per domain", slots: slots, series: series, bucket: summary.bucket,
      yLabel: "failures per " + summary.bucket, xLabel: "time (UTC)"
    });
    barChart($("chart-results"), {
      id: "results", title: "Failures per validation result", colour: COLOURS[1],
      items: (summary.by_validation_result || []).map(function (r) { return { label: String(r.validation_result), value: r.count }; })
    });
    barChart($("chart-versions"), {
      id: "versions", title: "Failures per app version", colour: COLOURS[0],
      items: (summary.by_app_version || []).map(function (r) { return { label: r.app_version === null ? "(none)" : String(r.app_version), value: r.count }; })
    });
    $("totals").textContent = fmtInt(summary.total) + " failures on " + fmtInt((summary.by_domain || []).length) +
      " domains between " + isoText(summary.since) + " and " + isoText(summary.until) + " UTC.";
    renderRates(summary.failure_rates);
  }

  /* ---------- failure rates (from verdict tallies) ---------- */

  function fmtRate(rate) { return (Number(rate || 0) * 100).toFixed(2) + " %"; }

  function renderRates(rates) {
    var body = $("rates-table").querySelector("tbody");
    clear(body);
    var items = (rates && rates.by_domain_and_app_version) || [];
    if (!items.length) {
      body.appendChild(el("tr", null, el("td", { colspan: 5, "class": "empty", text: "No verdict tallies in this period (clients opt in with VerdictTally)." })));
    }
    items.forEach(function (r) {
      body.appendChild(el("tr", { "data-hostname": r.hostname }, [
        el("td", { "data-label": "Domain", text: r.hostname }),
        el("td", { "data-label": "App version", text: r.app_version === null ? "(none)" : r.app_version }),
        el("td", { "class": "num", "data-label": "Failures", text: fmtInt(r.failures) }),
        el("td", { "class": "num", "data-label": "Verdicts", text: fmtInt(r.total) }),
        el("td", { "class": "num", "data-label": "Failure rate", text: fmtRate(r.rate) })
      ]));
    });
  }

  /* ---------- update events (refused bundles, failing update checks) ---------- */

  var EVENT_NAMES = { "bundle-refused": "bundle refused", "fetch-failed": "check failed" };

  function renderUpdateEvents(data) {
    var body = $("update-events-table").querySelector("tbody");
    clear(body);
    var items = (data && data.by_app_and_reason) || [];
    if (!items.length) {
      body.appendChild(el("tr", null, el("td", { colspan: 5, "class": "empty", text: "No refused bundle and no failing update check in this period." })));
    }
    items.forEach(function (r) {
      body.appendChild(el("tr", { "data-event-kind": r.kind, "data-event-reason": r.reason }, [
        el("td", { "data-label": "App", text: r.app_id === null ? "(none)" : r.app_id }),
        el("td", { "data-label": "Event", text: EVENT_NAMES[r.kind] || String(r.kind) }),
        el("td", { "data-label": "Reason", text: r.reason }),
        el("td", { "class": "num", "data-label": "Count", text: fmtInt(r.count) }),
        el("td", { "data-label": "Last seen (UTC)", text: isoText(r.last_seen) })
      ]));
    });
  }

  /* ---------- chains ---------- */

  function pinDigest(text) {
    // "sha256/<b64>" and pin-sha256="<b64>" name the same key: compare the base64 digest.
    var s = String(text).trim();
    var m = /^pin-sha256="?([^"]*)"?$/.exec(s);
    if (m) { s = m[1]; } else if (s.indexOf("sha256/") === 0) { s = s.slice(7); }
    return s.replace(/=+$/, "");
  }

  function knownPinsList(pins) {
    if (!pins.length) { return null; }
    return el("details", { "class": "known-pins" }, [
      el("summary", { text: pins.length + (pins.length === 1 ? " pin" : " pins") + " the apps knew" }),
      el("ul", null, pins.map(function (p) { return el("li", null, el("code", { "class": "pin", "data-known-pin": p, text: p })); }))
    ]);
  }

  function renderChains(data) {
    var body = $("chains-table").querySelector("tbody");
    clear(body);
    var items = (data && data.items) || [];
    if (!items.length) {
      body.appendChild(el("tr", null, el("td", { colspan: 4, "class": "empty", text: "No served chains reported in this period." })));
      return;
    }
    items.forEach(function (item) {
      // known_pins: every pin the apps that were served this chain in the period knew.
      var known = {};
      (item.known_pins || []).forEach(function (p) { known[pinDigest(p)] = true; });
      var haveKnown = Object.keys(known).length > 0;
      var matchedAny = false;
      var members = el("ol", { "class": "members" });
      (item.members || []).forEach(function (m) {
        var matched = haveKnown && known[pinDigest(m.pin)] === true;
        matchedAny = matchedAny || matched;
        members.appendChild(el("li", { "data-pin": m.pin }, [
          el("div", null, [el("strong", { text: "subject " }), m.subject || "(none)"]),
          el("div", null, [el("strong", { text: "issuer " }), m.issuer || "(unknown)"]),
          el("code", { "class": "pin", text: m.pin }),
          haveKnown ? el("span", { "class": "badge " + (matched ? "ok" : "bad"), text: matched ? "✔ known pin" : "✘ not pinned" }) : null
        ]));
      });
      var verdict = !haveKnown ? el("span", { "class": "badge unknown", text: "? no known pins reported" })
        : matchedAny ? el("span", { "class": "badge ok", text: "✔ yes — a known key is in the chain" })
          : el("span", { "class": "badge bad", text: "✘ no — none of these keys is pinned" });
      body.appendChild(el("tr", { "data-chain": item.key }, [
        el("td", { "class": "num", "data-label": "Reports", text: fmtInt(item.count) }),
        el("td", { "data-label": "Hosts" }, (item.hostnames || []).map(function (h) { return el("div", { text: h }); })),
        el("td", { "data-label": "Known pin?" }, [verdict, knownPinsList(item.known_pins || [])]),
        el("td", { "data-label": "Chain" }, members)
      ]));
    });
  }

  /* ---------- reports ---------- */

  function utcParam(value) {
    // <input type="datetime-local"> has no zone; the labels say UTC, so send UTC.
    if (!value) { return null; }
    return (value.length === 16 ? value + ":00" : value) + "Z";
  }

  function readFilters() {
    var form = $("filters");
    return {
      hostname: form.elements.hostname.value.trim(),
      app_version: form.elements.app_version.value.trim(),
      validation_result: form.elements.validation_result.value,
      since: utcParam(form.elements.since.value),
      until: utcParam(form.elements.until.value)
    };
  }

  function appText(r) {
    var parts = [r.app_bundle_id, r.app_version, r.app_platform].filter(function (x) { return x; });
    return parts.length ? parts.join(" · ") : "—";
  }

  function renderReports(data) {
    var body = $("reports-table").querySelector("tbody");
    clear(body);
    var items = (data && data.items) || [];
    state.nextCursor = data ? data.next_cursor : null;
    if (!items.length) {
      body.appendChild(el("tr", null, el("td", { colspan: 9, "class": "empty", text: "No reports match." })));
    }
    items.forEach(function (r) {
      var leaf = r.served_chain && r.served_chain.members && r.served_chain.members[0];
      body.appendChild(el("tr", { "data-report": r.id, "data-hostname": r.hostname }, [
        el("td", { "data-label": "Last seen", text: isoText(r.last_seen) }),
        el("td", { "data-label": "Host" }, [el("div", { text: r.hostname + (r.port ? ":" + r.port : "") }),
          r.noted_hostname && r.noted_hostname !== r.hostname ? el("div", { "class": "muted", text: "rule " + r.noted_hostname }) : null]),
        el("td", { "data-label": "App", text: appText(r) }),
        el("td", { "data-label": "Result", text: r.validation_result }),
        el("td", { "data-label": "Enforced", text: r.enforce_pinning === null || r.enforce_pinning === undefined ? "—" : (r.enforce_pinning ? "yes" : "report-only") }),
        el("td", { "class": "num", "data-label": "Count", text: fmtInt(r.count) }),
        el("td", { "data-label": "Served leaf" }, leaf ? [el("div", { text: leaf.subject }), el("code", { "class": "pin", text: leaf.pin })] : "—"),
        el("td", { "data-label": "Known pins" }, (r.known_pins || []).map(function (p) { return el("code", { "class": "pin", text: "sha256/" + pinDigest(p) + "=" }); })),
        el("td", { "data-label": "Format", text: r.variant })
      ]));
    });
    $("page-newer").disabled = state.cursors.length === 0;
    $("page-older").disabled = !state.nextCursor;
    $("page-info").textContent = "Page " + (state.cursors.length + 1) + " · " + items.length + " reports";
  }

  /* ---------- alerts ---------- */

  function renderAlerts(data) {
    var box = $("alerts");
    clear(box);
    var alerts = (data && data.alerts) || [];
    var rateAlerts = (data && data.rate_alerts) || [];
    if (!alerts.length && !rateAlerts.length) { box.hidden = true; return; }
    if (rateAlerts.length) {
      box.appendChild(el("h2", { text: "⚠ Failure rate alert: " + rateAlerts.length + (rateAlerts.length === 1 ? " domain is" : " domains are") +
        " at or over " + fmtRate(data.rate_threshold) + " of at least " + fmtInt(data.rate_min_total) + " verdicts in the last hour" }));
      var rateList = el("ul");
      rateAlerts.forEach(function (a) {
        rateList.appendChild(el("li", { "data-rate-hostname": a.hostname }, [el("strong", { text: a.hostname }),
          ": " + fmtRate(a.rate) + " (" + fmtInt(a.failures) + " of " + fmtInt(a.total) + " verdicts)"]));
      });
      box.appendChild(rateList);
    }
    if (!alerts.length) { box.hidden = false; return; }
    box.appendChild(el("h2", { text: "⚠ Pin failure alert: " + alerts.length + (alerts.length === 1 ? " domain is" : " domains are") +
      " over " + fmtInt(data.threshold) + " failures in the last hour" }));
    var list = el("ul");
    alerts.forEach(function (a) {
      var show = el("button", { type: "button", "class": "quiet", text: "Show reports" });
      show.addEventListener("click", function () {
        $("filters").elements.hostname.value = a.hostname;
        applyFilters();
      });
      list.appendChild(el("li", { "data-hostname": a.hostname }, [el("strong", { text: a.hostname }), ": " + fmtInt(a.count) + " failures since " + isoText(data.since) + " UTC", show]));
    });
    box.appendChild(list);
    box.hidden = false;
  }

  /* ---------- loading ---------- */

  function summaryParams() {
    var range = RANGES[$("range").value] || RANGES["24h"];
    var since = new Date(Date.now() - range.seconds * 1000).toISOString().replace(/\.\d+Z$/, "Z");
    return { since: since, bucket: range.bucket };
  }

  function loadReports() {
    var params = Object.assign({ limit: 25, cursor: state.cursor }, state.filters);
    return api("/v1/reports", params).then(renderReports);
  }

  function refresh() {
    if (!state.token) {
      setStatus("Enter the collector's read token to load the data.", true);
      $("token-input").focus();
      return Promise.resolve();
    }
    setStatus("Loading…", false);
    var range = summaryParams();
    var jobs = [
      api("/v1/alerts").then(renderAlerts),
      api("/v1/summary", range).then(renderSummary),
      api("/v1/chains", { since: range.since, limit: 10 }).then(renderChains),
      api("/v1/update-events", { since: range.since, limit: 1 }).then(renderUpdateEvents),
      loadReports()
    ];
    return Promise.allSettled(jobs).then(function (results) {
      var failed = results.filter(function (r) { return r.status === "rejected"; });
      if (!failed.length) {
        setStatus("Updated " + utcLabel(Date.now(), true, true) + " UTC" + ($("auto-refresh").checked ? " · refreshing every 30 s" : ""), false);
        document.body.setAttribute("data-loaded", String(Date.now()));
        return;
      }
      var unauthorized = failed.some(function (r) { return r.reason && r.reason.status === 401; });
      if (unauthorized) {
        setStatus("The collector refused the token (401). Enter the read token set with --token or PINSET_COLLECTOR_TOKEN.", true);
        $("token-input").focus();
      } else {
        setStatus("Some data could not be loaded: " + failed.map(function (r) {
          return r.reason && r.reason.message ? r.reason.message : String(r.reason);
        }).join("; "), true);
      }
    });
  }

  function schedule() {
    if (state.timer) { clearInterval(state.timer); state.timer = null; }
    if ($("auto-refresh").checked) {
      state.timer = setInterval(function () { if (!document.hidden) { refresh(); } }, REFRESH_MS);
    }
  }

  function applyFilters() {
    state.filters = readFilters();
    state.cursors = [];
    state.cursor = null;
    return loadReports().catch(function (e) { setStatus(e.message || String(e), true); });
  }

  function init() {
    state.token = loadToken();
    $("token-form").addEventListener("submit", function (event) {
      event.preventDefault();
      var value = $("token-input").value.trim();
      if (!value) { return; }
      state.token = value;
      sessionStorage.setItem(TOKEN_KEY, value);
      $("token-input").value = "";
      refresh();
    });
    $("token-forget").addEventListener("click", function () {
      sessionStorage.removeItem(TOKEN_KEY);
      state.token = null;
      refresh();
    });
    $("filters").addEventListener("submit", function (event) { event.preventDefault(); applyFilters(); });
    $("filters").addEventListener("reset", function () { setTimeout(applyFilters, 0); });
    $("range").addEventListener("change", refresh);
    $("refresh-now").addEventListener("click", refresh);
    $("auto-refresh").addEventListener("change", function () { schedule(); });
    $("page-older").addEventListener("click", function () {
      if (!state.nextCursor) { return; }
      state.cursors.push(state.cursor);
      state.cursor = state.nextCursor;
      loadReports();
    });
    $("page-newer").addEventListener("click", function () {
      if (!state.cursors.length) { return; }
      state.cursor = state.cursors.pop();
      loadReports();
    });
    var resizeTimer = null;
    window.addEventListener("resize", function () {
      clearTimeout(resizeTimer);
      resizeTimer = setTimeout(function () { if (state.summary) { renderSummary(state.summary); } }, 150);
    });
    document.addEventListener("visibilitychange", function () { if (!document.hidden && state.token) { refresh(); } });
    state.filters = readFilters();
    schedule();
    refresh();
  }

  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", init); }
  else { init(); }
}());
