// Conversation titles a person tells apart: the goal and the user's first request
// ("Travel: see events in San Francisco in March"), or the name the user gave it.
//
// A renamed title is kept in this browser (localStorage holds titles, never a token).

const TITLE_KEY = "onward.title.";
const POLITE = /^(hi|hello|hey)[,!.\s]+|^(please\s+|can you\s+|could you\s+|i'?d like to\s+|i would like to\s+|i want to\s+|i'm looking to\s+)/i;

function capital(text) {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

// The request without its polite opening: "I'd like to see events…" -> "See events…".
export function requestWords(text) {
  let words = String(text).trim();
  for (let i = 0; i < 3; i++) {
    const shorter = words.replace(POLITE, "");
    if (shorter === words) break;
    words = shorter;
  }
  words = words.replace(/[.!?…]+$/, "");
  return words ? capital(words) : "";
}

export function goalWords(goal) {
  return capital(String(goal).replace(/[_-]+/g, " "));
}

export function customTitle(id) {
  return localStorage.getItem(TITLE_KEY + id);
}

export function setCustomTitle(id, title) {
  if (title) localStorage.setItem(TITLE_KEY + id, title);
  else localStorage.removeItem(TITLE_KEY + id);
}

export function titleFor(conversation) {
  const custom = customTitle(conversation.id);
  if (custom) return custom;
  const request = requestWords(conversation.title || "");
  const goal = goalWords(conversation.goal);
  return request ? `${goal}: ${request}` : `${goal} (new)`;
}
