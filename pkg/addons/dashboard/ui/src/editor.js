// The YAML editor: CodeMirror 6 with YAML highlighting.
import { EditorView, keymap, lineNumbers, highlightActiveLine } from "@codemirror/view";
import { EditorState } from "@codemirror/state";
import { defaultKeymap, history, historyKeymap, indentWithTab } from "@codemirror/commands";
import { syntaxHighlighting, defaultHighlightStyle, indentUnit } from "@codemirror/language";
import { yaml } from "@codemirror/lang-yaml";

export function yamlEditor(parent, text, readOnly) {
  return new EditorView({
    parent,
    state: EditorState.create({
      doc: text,
      extensions: [
        lineNumbers(), highlightActiveLine(), history(), indentUnit.of("  "),
        keymap.of([...defaultKeymap, ...historyKeymap, indentWithTab]),
        syntaxHighlighting(defaultHighlightStyle), yaml(),
        EditorState.readOnly.of(!!readOnly), EditorView.editable.of(!readOnly),
        EditorView.contentAttributes.of({ "aria-label": "YAML", "data-testid": "yaml-editor" }),
      ],
    }),
  });
}

export function editorText(view) { return view.state.doc.toString(); }

export function setEditorText(view, text) {
  view.dispatch({ changes: { from: 0, to: view.state.doc.length, insert: text } });
}
