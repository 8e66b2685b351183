/**
 * Renders a bench result document as an SVG bar chart: one group per throughput scenario,
 * one bar per peer, each bar's height relative to the fastest peer in its group (the
 * absolute figure is written on the bar). No dependencies: plain SVG text.
 */

const palette = ['#d6452b', '#3b7dd8', '#8fb3e8', '#5aa469', '#e0a030', '#777777', '#a05fc0'];

function esc(s) {
  return String(s).replace(
    /[&<>"]/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c],
  );
}

function short(n) {
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)}M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)}k`;
  return n.toFixed(0);
}

/** @param {{peers: {name: string, label: string}[], scenarios: {name: string, label: string}[], results: Record<string, Record<string, any>>, date: string}} doc */
export function renderChart(doc) {
  const rate = (r) => r?.msgs_per_sec ?? r?.handshakes_per_sec;
  const groups = doc.scenarios.filter((s) =>
    doc.peers.some((p) => rate(doc.results[p.name]?.[s.name])),
  );
  const barW = 22;
  const gap = 28;
  const groupW = doc.peers.length * barW + gap;
  const left = 40;
  const top = 50;
  const plotH = 260;
  const width = Math.max(600, left + groups.length * groupW + 20);
  const height = top + plotH + 70 + doc.peers.length * 18;
  const out = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="11">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${left}" y="24" font-size="15" font-weight="bold">lapps bench ${esc(doc.date)}: throughput relative to the fastest peer per scenario</text>`,
    `<line x1="${left}" y1="${top + plotH}" x2="${width - 10}" y2="${top + plotH}" stroke="#333"/>`,
  ];
  groups.forEach((s, gi) => {
    const x0 = left + gi * groupW;
    const best = Math.max(...doc.peers.map((p) => rate(doc.results[p.name]?.[s.name]) ?? 0));
    doc.peers.forEach((p, pi) => {
      const v = rate(doc.results[p.name]?.[s.name]);
      if (!v) return;
      const h = (v / best) * plotH;
      const x = x0 + pi * barW;
      const y = top + plotH - h;
      out.push(
        `<rect x="${x}" y="${y.toFixed(1)}" width="${barW - 3}" height="${h.toFixed(1)}" fill="${palette[pi % palette.length]}"><title>${esc(p.label)}: ${short(v)}/s</title></rect>`,
      );
      out.push(
        `<text x="${x + (barW - 3) / 2}" y="${(y - 3).toFixed(1)}" text-anchor="end" transform="rotate(-90 ${x + (barW - 3) / 2} ${(y - 3).toFixed(1)})" font-size="9">${short(v)}</text>`,
      );
    });
    out.push(`<text x="${x0}" y="${top + plotH + 16}" font-size="10">${esc(s.label)}</text>`);
  });
  doc.peers.forEach((p, pi) => {
    const y = top + plotH + 40 + pi * 18;
    out.push(
      `<rect x="${left}" y="${y - 10}" width="12" height="12" fill="${palette[pi % palette.length]}"/>`,
    );
    out.push(`<text x="${left + 18}" y="${y}">${esc(p.label)}</text>`);
  });
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}
