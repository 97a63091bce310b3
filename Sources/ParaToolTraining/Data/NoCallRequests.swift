// NoCallRequests: requests that no tool of a catalogue answers — small talk, writing, general
// knowledge, advice — for the synthesized steps whose right answer is text. Each template names
// the words that would make it a tool's job; a template is used with a candidate set only when
// none of those words is among the candidates' schema words, so a catalogue with a translation
// tool never learns "translate this" as a request no tool fits.
import Foundation
import Tensor

enum NoCallRequests {
    /// A request template: its text (`{x}` filled from `fillers`) and the words of the job it asks.
    struct Template {
        var text: String
        var fillers: [String]
        var jobWords: Set<String>
    }

    static let topics = ["the ocean", "autumn", "my cat", "coffee", "friendship", "the moon", "trains", "rainy days", "mountains",
                         "a lighthouse", "city lights", "old books", "the first snow", "gardening", "bicycles"]
    static let books = ["Moby Dick", "Pride and Prejudice", "War and Peace", "Don Quixote", "Jane Eyre", "The Odyssey",
                        "Crime and Punishment", "Great Expectations", "Anna Karenina", "Frankenstein"]
    static let concepts = ["photosynthesis", "inflation", "gravity", "the water cycle", "compound interest", "machine learning",
                           "plate tectonics", "supply and demand", "the immune system", "black holes", "recursion", "democracy"]
    static let tasks = ["tie a bowline knot", "fold a fitted sheet", "make sourdough starter", "change a bike tire",
                        "remove a coffee stain", "prune a rose bush", "iron a dress shirt", "sharpen a kitchen knife"]
    static let dishes = ["lentil soup", "banana bread", "a Greek salad", "pancakes", "vegetable curry", "guacamole", "risotto"]
    static let phrases = ["good morning", "thank you very much", "where is the station", "see you tomorrow", "I love this song"]
    static let words = ["serendipity", "ephemeral", "ubiquitous", "quixotic", "sonder", "petrichor", "laconic"]

    static let templates: [Template] = [
        Template(text: "Tell me a joke about {x}.", fillers: topics, jobWords: ["joke", "jokes", "humor"]),
        Template(text: "Write a short poem about {x}.", fillers: topics, jobWords: ["poem", "poetry", "write", "writing"]),
        Template(text: "Can you write a haiku about {x}?", fillers: topics, jobWords: ["haiku", "poem", "write"]),
        Template(text: "Who wrote {x}?", fillers: books, jobWords: ["author", "book", "books", "wrote"]),
        Template(text: "Summarize the plot of {x} in two sentences.", fillers: books, jobWords: ["summary", "summarize", "plot", "book"]),
        Template(text: "Explain {x} in simple terms.", fillers: concepts, jobWords: ["explain", "explanation", "definition"]),
        Template(text: "What is {x}?", fillers: concepts, jobWords: ["definition", "define", "encyclopedia", "wiki", "wikipedia"]),
        Template(text: "How do I {x}?", fillers: tasks, jobWords: ["howto", "guide", "instructions", "tutorial"]),
        Template(text: "Give me a recipe for {x}.", fillers: dishes, jobWords: ["recipe", "recipes", "cook", "cooking", "food", "meal"]),
        Template(text: "Translate '{x}' into Italian.", fillers: phrases, jobWords: ["translate", "translation", "language", "italian"]),
        Template(text: "What does the word '{x}' mean?", fillers: words, jobWords: ["dictionary", "definition", "define", "word", "meaning"]),
        Template(text: "Recommend a good novel like {x}.", fillers: books, jobWords: ["recommend", "recommendation", "book", "novel", "books"]),
        Template(text: "Help me write a thank-you note to my neighbour about {x}.", fillers: topics,
                 jobWords: ["note", "letter", "email", "message", "write"]),
        Template(text: "I'm feeling a bit down today, any advice?", fillers: [""], jobWords: ["advice", "mood", "therapy", "health"]),
        Template(text: "Hi! How are you doing today?", fillers: [""], jobWords: ["chat", "greeting"]),
        Template(text: "Thanks, that's all I needed.", fillers: [""], jobWords: ["chat"]),
        Template(text: "What's a good name for a pet hamster?", fillers: [""], jobWords: ["name", "names", "pet", "pets"]),
        Template(text: "Tell me an interesting fact about {x}.", fillers: topics, jobWords: ["fact", "facts", "trivia"]),
    ]

    /// A request no tool among candidates with schema words `candidateWords` does, or nil when
    /// every template names one of their jobs.
    static func request(avoiding candidateWords: Set<String>, rng: inout SeededGenerator) -> String? {
        let usable = templates.filter { $0.jobWords.isDisjoint(with: candidateWords) }
        guard !usable.isEmpty else { return nil }
        let t = usable[Int(rng.next() % UInt64(usable.count))]
        let x = t.fillers[Int(rng.next() % UInt64(t.fillers.count))]
        return t.text.replacingOccurrences(of: "{x}", with: x)
    }
}
