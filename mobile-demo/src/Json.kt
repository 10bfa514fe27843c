// A small JSON reader for the tests' admin API checks, so the JVM test needs no library
// beyond the generated bindings and JNA.

package doorstep.demo

/** Parses one JSON text into Map / List / String / Double / Boolean / null. */
class Json private constructor(private val text: String) {
    private var at = 0

    companion object {
        fun parse(text: String): Any? {
            val json = Json(text)
            val value = json.value()
            json.space()
            check(json.at == text.length) { "trailing characters in JSON at ${json.at}" }
            return value
        }
    }

    private fun space() {
        while (at < text.length && text[at].isWhitespace()) at++
    }

    private fun value(): Any? {
        space()
        check(at < text.length) { "JSON ends early" }
        return when (text[at]) {
            '{' -> obj()
            '[' -> array()
            '"' -> string()
            't' -> word("true", true)
            'f' -> word("false", false)
            'n' -> word("null", null)
            else -> number()
        }
    }

    private fun word(word: String, value: Any?): Any? {
        check(text.startsWith(word, at)) { "bad JSON literal at $at" }
        at += word.length
        return value
    }

    private fun number(): Double {
        val start = at
        while (at < text.length && (text[at].isDigit() || text[at] in "+-.eE")) at++
        return text.substring(start, at).toDouble()
    }

    private fun string(): String {
        val out = StringBuilder()
        at++
        while (true) {
            val c = text[at++]
            when (c) {
                '"' -> return out.toString()
                '\\' -> {
                    val e = text[at++]
                    when (e) {
                        'n' -> out.append('\n')
                        't' -> out.append('\t')
                        'r' -> out.append('\r')
                        'b' -> out.append('\b')
                        'f' -> out.append('\u000c')
                        'u' -> {
                            out.append(text.substring(at, at + 4).toInt(16).toChar())
                            at += 4
                        }
                        else -> out.append(e)
                    }
                }
                else -> out.append(c)
            }
        }
    }

    private fun array(): List<Any?> {
        val out = mutableListOf<Any?>()
        at++
        space()
        if (text[at] == ']') { at++; return out }
        while (true) {
            out.add(value())
            space()
            if (text[at++] == ']') return out
        }
    }

    private fun obj(): Map<String, Any?> {
        val out = linkedMapOf<String, Any?>()
        at++
        space()
        if (text[at] == '}') { at++; return out }
        while (true) {
            space()
            val key = string()
            space()
            check(text[at++] == ':') { "expected ':' in JSON at $at" }
            out[key] = value()
            space()
            if (text[at++] == '}') return out
        }
    }
}
