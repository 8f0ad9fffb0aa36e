// The operator's dashboard: one self-contained page (no build step, no external assets) that
// polls the JSON API once a second. Live calls with their legs and per-stream counters, a chart
// of packets per second, the instance state with drain/enable/disable buttons.
export const dashboardHtml = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>rtprelay</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
 body{font:14px system-ui,sans-serif;margin:1.5em;color:#222;background:#fafafa}
 h1{font-size:1.3em;margin:0 0 .5em} h2{font-size:1.05em;margin:1.2em 0 .4em}
 table{border-collapse:collapse;width:100%;background:#fff} td,th{border:1px solid #ddd;padding:.3em .5em;text-align:left;vertical-align:top}
 th{background:#f0f0f0} .state{font-weight:bold;padding:.2em .6em;border-radius:.3em}
 .active{background:#d4f7d4} .draining,.drained{background:#ffe9b3} .disabled{background:#f7d4d4}
 button{margin-right:.5em;padding:.3em .9em} canvas{background:#fff;border:1px solid #ddd}
 .mono{font-family:ui-monospace,monospace;font-size:12px}
</style></head><body>
<h1>rtprelay</h1>
<div>Instance: <span id="state" class="state">…</span>
 <button id="drain">Drain</button><button id="enable">Enable</button><button id="disable">Disable</button>
 <span id="msg"></span></div>
<h2>Packets per second (last 5 minutes)</h2>
<canvas id="chart" width="800" height="160"></canvas>
<h2>Calls (<span id="ncalls">0</span>)</h2>
<table><thead><tr><th>Call-ID</th><th>Leg</th><th>Media</th><th>Local</th><th>Peer</th><th>Packets</th><th>Bytes</th><th>Errors</th></tr></thead>
<tbody id="calls"></tbody></table>
<script>
const $ = (id) => document.getElementById(id);
const esc = (s) => String(s).replace(/[&<>"]/g, (c) => ({'&':'&amp;','<':'&lt;','>':'&gt;','"':'&quot;'}[c]));
const token = new URLSearchParams(location.search).get('token');
async function api(path, method) {
  const r = await fetch('/api/' + path, { method: method || 'GET', headers: token ? { authorization: 'Bearer ' + token } : {} });
  if (!r.ok) throw new Error(path + ': ' + r.status);
  return r.json();
}
function drawChart(points) {
  const c = $('chart'), g = c.getContext('2d');
  g.clearRect(0, 0, c.width, c.height);
  const max = Math.max(10, ...points.map((p) => p.pps));
  g.strokeStyle = '#999'; g.fillText(String(max) + ' pps', 4, 12);
  g.strokeStyle = '#2a6'; g.lineWidth = 2; g.beginPath();
  points.forEach((p, i) => {
    const x = c.width * (i / Math.max(1, points.length - 1)), y = c.height - 4 - (c.height - 20) * (p.pps / max);
    if (i) g.lineTo(x, y); else g.moveTo(x, y);
  });
  g.stroke();
}
async function refresh() {
  try {
    const [totals, list] = await Promise.all([api('totals'), api('calls')]);
    $('state').textContent = totals.instance; $('state').className = 'state ' + totals.instance;
    drawChart(totals.history || []);
    $('ncalls').textContent = list.calls.length;
    const rows = [];
    for (const c of list.calls) {
      const full = await api('calls/' + encodeURIComponent(c.callId));
      for (const p of full.participants) for (const m of p.medias) for (const s of m.streams) {
        rows.push('<tr data-call="' + esc(c.callId) + '"><td class="mono">' + esc(c.callId) + '</td><td>' + esc(p.tag || '(untagged)') +
          '</td><td>' + esc(m.type + ' ' + s.kind) + '</td><td class="mono">' + esc(s.local ? s.local.address + ':' + s.local.port : '-') +
          '</td><td class="mono">' + esc(s.endpoint ? s.endpoint.address + ':' + s.endpoint.port : '-') + '</td><td class="packets">' +
          s.stats.packets + '</td><td>' + s.stats.bytes + '</td><td>' + s.stats.errors + '</td></tr>');
      }
    }
    $('calls').innerHTML = rows.join('');
  } catch (e) { $('msg').textContent = String(e); }
}
for (const a of ['drain', 'enable', 'disable']) $(a).onclick = async () => {
  try { const r = await api(a, 'POST'); $('state').textContent = r.state; $('state').className = 'state ' + r.state; } catch (e) { $('msg').textContent = String(e); }
};
refresh(); setInterval(refresh, 1000);
</script></body></html>`;
