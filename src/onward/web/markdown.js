// Escape-first rendering of a small, safe markdown subset for model text.
//
// Everything is HTML-escaped before any markdown is applied, so the only tags in the
// result are the fixed ones added here; links must be http(s).

const ESCAPES = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };

export function escapeHtml(text) {
  return String(text).replace(/[&<>"']/g, (c) => ESCAPES[c]);
}

// `escaped` has no markup of its own: every tag below is one we add.
function inlineMarkdown(escaped) {
  return escaped
    .split(/(`[^`]+`)/)
    .map((part, i) => {
      if (i % 2 === 1) return "<code>" + part.slice(1, -1) + "</code>";
      return part
        .replace(/\*\*([^*<]+)\*\*/g, "<strong>$1</strong>")
        .replace(/(^|[\s(])\*([^*<\s][^*<]*)\*(?=$|[\s).,!?:;])/g, "$1<em>$2</em>")
        .split(/(\[[^\]<]+\]\(https?:\/\/[^\s)<]+\))/)
        .map((piece, j) => {
          if (j % 2 === 1) {
            const [, label, url] = /^\[([^\]<]+)\]\((.+)\)$/.exec(piece);
            return link(url, label);
          }
          // A bare URL (a pay link) is a link too; the entities of escaped quotes and
          // brackets end it, so it cannot leave its attribute.
          return piece.replace(BARE_URL, (url) => {
            const trail = /[.,;:!?)]+$/.exec(url);
            const cut = trail && !/&[a-z0-9#]+;$/i.test(url) ? trail[0] : "";
            const target = cut ? url.slice(0, -cut.length) : url;
            return link(target, target) + cut;
          });
        })
        .join("");
    })
    .join("");
}

const BARE_URL = /https?:\/\/(?:(?!&quot;|&#39;|&lt;|&gt;)[^\s<])+/g;

function link(url, label) {
  return `<a href="${url}" target="_blank" rel="noopener noreferrer">${label}</a>`;
}

// A small, safe subset: paragraphs, line breaks, `- ` lists, ``` code blocks,
// `code`, **bold**, *italic* and http(s) links.
export function renderMarkdown(text) {
  const out = [];
  let para = [];
  let list = null;
  let code = null;
  const flushPara = () => {
    if (para.length) out.push("<p>" + para.map(inlineMarkdown).join("<br>") + "</p>");
    para = [];
  };
  const flushList = () => {
    if (list) out.push("<ul>" + list.map((i) => "<li>" + inlineMarkdown(i) + "</li>").join("") + "</ul>");
    list = null;
  };
  for (const line of escapeHtml(text).split("\n")) {
    const fence = line.trim().startsWith("```");
    if (code !== null) {
      if (fence) {
        out.push("<pre><code>" + code.join("\n") + "</code></pre>");
        code = null;
      } else {
        code.push(line);
      }
      continue;
    }
    if (fence) {
      flushPara();
      flushList();
      code = [];
      continue;
    }
    const item = /^\s*[-*]\s+(.*)$/.exec(line);
    if (item) {
      flushPara();
      (list = list || []).push(item[1]);
    } else if (!line.trim()) {
      flushPara();
      flushList();
    } else {
      flushList();
      para.push(line.replace(/^#{1,6}\s+/, ""));
    }
  }
  if (code !== null) out.push("<pre><code>" + code.join("\n") + "</code></pre>");
  flushPara();
  flushList();
  return out.join("");
}
