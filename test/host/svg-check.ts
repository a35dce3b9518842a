/**
 * A small XML well-formedness check for the generated SVGs (no XML library in the project): one root
 * element, tags that nest and match, quoted attributes not repeated, no '<' in text or attribute
 * values, '&' only as a predefined entity or character reference. Returns the problems (empty when
 * well-formed) and the text of every element, in order.
 */
export function checkXml(src: string): { problems: string[]; root: string; texts: string[] } {
  const problems: string[] = []
  const texts: string[] = []
  const stack: string[] = []
  let root = ''
  let i = 0
  const entities = (s: string, where: string): void => {
    for (const m of s.matchAll(/&([^;]*);?/g)) {
      if (!/^(amp|lt|gt|quot|apos|#[0-9]+|#x[0-9a-fA-F]+)$/.test(m[1]!) || !m[0].endsWith(';')) problems.push(`${where}: bad entity ${m[0]}`)
    }
  }
  while (i < src.length) {
    const lt = src.indexOf('<', i)
    const text = src.slice(i, lt < 0 ? src.length : lt)
    if (text.includes('>')) problems.push(`'>' in text at ${i}`)
    entities(text, `text at ${i}`)
    if (stack.length === 0 && text.trim() !== '') problems.push(`text outside the root at ${i}`)
    if (stack.length > 0 && text.trim() !== '') texts.push(text.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&amp;/g, '&'))
    if (lt < 0) break
    if (src.startsWith('<?', lt) || src.startsWith('<!--', lt)) {
      const end = src.indexOf(src.startsWith('<?', lt) ? '?>' : '-->', lt)
      if (end < 0) problems.push(`unterminated at ${lt}`)
      i = end < 0 ? src.length : end + 2
      continue
    }
    const gt = src.indexOf('>', lt)
    if (gt < 0) {
      problems.push(`unterminated tag at ${lt}`)
      break
    }
    const tag = src.slice(lt + 1, gt)
    i = gt + 1
    if (tag.startsWith('/')) {
      const name = tag.slice(1).trim()
      if (stack.pop() !== name) problems.push(`</${name}> does not match at ${lt}`)
      continue
    }
    const selfClosing = tag.endsWith('/')
    const m = /^([A-Za-z_:][\w:.-]*)([\s\S]*?)\/?$/.exec(tag)
    if (m === null) {
      problems.push(`bad tag <${tag}> at ${lt}`)
      continue
    }
    const seen = new Set<string>()
    const rest = m[2]!.replace(/\s+([A-Za-z_:][\w:.-]*)="([^"]*)"/g, (_all, name: string, value: string) => {
      if (seen.has(name)) problems.push(`attribute ${name} twice at ${lt}`)
      seen.add(name)
      if (value.includes('<')) problems.push(`'<' in attribute ${name} at ${lt}`)
      entities(value, `attribute ${name} at ${lt}`)
      return ''
    })
    if (rest.trim() !== '') problems.push(`bad attributes in <${m[1]}> at ${lt}: ${rest.trim()}`)
    if (stack.length === 0) {
      if (root !== '') problems.push(`a second root <${m[1]}> at ${lt}`)
      root = m[1]!
    }
    if (!selfClosing) stack.push(m[1]!)
  }
  if (stack.length > 0) problems.push(`unclosed: ${stack.join(', ')}`)
  if (root === '') problems.push('no root element')
  return { problems, root, texts }
}
