/**
 * Accessible tabs (WAI-ARIA Authoring Practices, "Tabs with Automatic Activation"): buttons with
 * role="tab" inside role="tablist", each controlling the panel named by aria-controls. Left/Right/Home/End move between the visible tabs; only the
 * selected tab is in the Tab order.
 */

export function createTabs(tablist, onSelect = () => {}) {
  const tabs = () => [...tablist.querySelectorAll('[role="tab"]')].filter((tab) => !tab.hidden);
  const panelOf = (tab) => document.getElementById(tab.getAttribute('aria-controls'));

  const select = (tab, focus = false) => {
    for (const other of tablist.querySelectorAll('[role="tab"]')) {
      const selected = other === tab;
      other.setAttribute('aria-selected', String(selected));
      other.tabIndex = selected ? 0 : -1;
      panelOf(other).hidden = !selected;
    }
    if (focus) tab.focus();
    onSelect(tab.id);
  };

  tablist.addEventListener('click', (event) => {
    const tab = event.target.closest('[role="tab"]');
    if (tab) select(tab);
  });
  tablist.addEventListener('keydown', (event) => {
    const visible = tabs();
    const at = visible.indexOf(document.activeElement);
    if (at < 0) return;
    const next = { ArrowRight: at + 1, ArrowLeft: at - 1, Home: 0, End: visible.length - 1 }[event.key];
    if (next === undefined) return;
    event.preventDefault();
    select(visible[(next + visible.length) % visible.length], true);
  });

  return {
    /** Shows only the tabs whose ids are given, and selects `selectedId`. */
    show(ids, selectedId) {
      for (const tab of tablist.querySelectorAll('[role="tab"]')) tab.hidden = !ids.includes(tab.id);
      select(document.getElementById(selectedId));
    },
  };
}
