//! Word lists the sample dataset draws names from.
//!
//! Names are built from these lists by index arithmetic (see `world.rs`) so
//! that user emails and account domains are unique without any lookup.

/// The selling company's email domain (a reserved `.example` domain).
pub(crate) const INTERNAL_DOMAIN: &str = "lumencloud.example";

/// Base of recording links.
pub(crate) const CALL_URL: &str = "https://calls.lumencloud.example/r/";

pub(crate) const FIRST_NAMES: [&str; 100] = [
    "Aaliyah",
    "Adam",
    "Aisha",
    "Alejandro",
    "Alex",
    "Amara",
    "Amir",
    "Ana",
    "Andrea",
    "Anika",
    "Arjun",
    "Ava",
    "Ben",
    "Bianca",
    "Carlos",
    "Carmen",
    "Chen",
    "Chloe",
    "Daniel",
    "Diego",
    "Elena",
    "Eli",
    "Emma",
    "Ethan",
    "Fatima",
    "Felix",
    "Fiona",
    "Gabriel",
    "Grace",
    "Hannah",
    "Hiro",
    "Ines",
    "Isaac",
    "Isabel",
    "Jack",
    "Jamal",
    "James",
    "Jana",
    "Javier",
    "Jin",
    "Jonas",
    "Julia",
    "Kai",
    "Karim",
    "Kate",
    "Kenji",
    "Laila",
    "Lars",
    "Leah",
    "Leo",
    "Liam",
    "Lina",
    "Lucas",
    "Lucia",
    "Maya",
    "Mateo",
    "Mei",
    "Mia",
    "Miguel",
    "Nadia",
    "Nathan",
    "Nia",
    "Noah",
    "Nora",
    "Olivia",
    "Omar",
    "Oscar",
    "Priya",
    "Rafael",
    "Rahul",
    "Rosa",
    "Ryan",
    "Sakura",
    "Sam",
    "Sara",
    "Sebastian",
    "Sofia",
    "Sven",
    "Tariq",
    "Tessa",
    "Theo",
    "Tom",
    "Uma",
    "Valentina",
    "Victor",
    "Wei",
    "Yara",
    "Yusuf",
    "Zara",
    "Zoe",
    "Aria",
    "Bruno",
    "Clara",
    "Dev",
    "Elif",
    "Femi",
    "Greta",
    "Hugo",
    "Ivy",
    "Joel",
];

pub(crate) const LAST_NAMES: [&str; 100] = [
    "Abbott", "Adeyemi", "Alvarez", "Andersen", "Bauer", "Becker", "Bennett", "Brooks", "Campbell",
    "Castro", "Chen", "Cohen", "Costa", "Das", "Dubois", "Edwards", "Eriksson", "Evans", "Fischer",
    "Flores", "Garcia", "Gomez", "Gupta", "Hall", "Hansen", "Harris", "Hughes", "Ibrahim", "Ito",
    "Jensen", "Johnson", "Kaur", "Kelly", "Kim", "Klein", "Kowalski", "Kumar", "Lambert", "Larsen",
    "Lee", "Lopez", "Martin", "Meyer", "Mendes", "Moreau", "Morris", "Murphy", "Nakamura",
    "Nguyen", "Novak", "Okafor", "Olsen", "Ortiz", "Park", "Patel", "Perez", "Petrov", "Quinn",
    "Ramos", "Reddy", "Reyes", "Richter", "Rivera", "Romano", "Rossi", "Russo", "Sato", "Schmidt",
    "Schulz", "Shah", "Silva", "Singh", "Smith", "Sousa", "Suzuki", "Tanaka", "Taylor", "Thomas",
    "Torres", "Tran", "Turner", "Vargas", "Vogel", "Wagner", "Walker", "Wang", "Weber", "Wilson",
    "Wong", "Wright", "Yamada", "Yilmaz", "Young", "Zhang", "Zimmer", "Ahmed", "Bianchi", "Cruz",
    "Dalton", "Ekstrom",
];

/// First halves of company names.
pub(crate) const COMPANY_HEADS: [&str; 50] = [
    "Blue", "North", "Silver", "Bright", "Iron", "Red", "Green", "Stone", "Clear", "Swift", "High",
    "Deep", "Oak", "Pine", "Cedar", "Golden", "Sun", "Moon", "Star", "Sky", "River", "Lake",
    "Storm", "Frost", "Ember", "Coral", "Amber", "Crystal", "Echo", "Falcon", "Fox", "Wolf",
    "Bear", "Hawk", "Lion", "Maple", "Nova", "Orbit", "Pixel", "Quantum", "Rapid", "Solar",
    "Terra", "Ultra", "Vector", "West", "East", "South", "True", "Zen",
];

/// Second halves of company names (fused to the first).
pub(crate) const COMPANY_TAILS: [&str; 40] = [
    "field", "stone", "wave", "point", "bridge", "harbor", "gate", "line", "peak", "ridge",
    "works", "forge", "craft", "mark", "path", "port", "rock", "shore", "side", "spring", "view",
    "wood", "beam", "bit", "core", "flow", "grid", "hub", "leaf", "loop", "mint", "nest", "pulse",
    "sail", "scape", "span", "sphere", "stack", "vale", "wind",
];

/// Company name suffixes, each with the industry it suggests.
pub(crate) const COMPANY_KINDS: [(&str, &str); 30] = [
    ("Analytics", "Software"),
    ("Systems", "Software"),
    ("Labs", "Software"),
    ("Software", "Software"),
    ("Cloud", "Software"),
    ("Security", "Software"),
    ("Health", "Healthcare"),
    ("Medical", "Healthcare"),
    ("Pharma", "Healthcare"),
    ("Logistics", "Transportation"),
    ("Freight", "Transportation"),
    ("Mobility", "Transportation"),
    ("Capital", "Financial Services"),
    ("Bank", "Financial Services"),
    ("Insurance", "Financial Services"),
    ("Payments", "Financial Services"),
    ("Foods", "Consumer Goods"),
    ("Brands", "Consumer Goods"),
    ("Apparel", "Retail"),
    ("Markets", "Retail"),
    ("Robotics", "Manufacturing"),
    ("Industries", "Manufacturing"),
    ("Materials", "Manufacturing"),
    ("Energy", "Energy"),
    ("Power", "Energy"),
    ("Media", "Media"),
    ("Studios", "Media"),
    ("Telecom", "Telecommunications"),
    ("Networks", "Telecommunications"),
    ("Education", "Education"),
];

/// Domain endings and the legal suffix that goes with them, by name generation.
pub(crate) const GENERATIONS: [(&str, &str); 4] = [
    ("com", ""),
    ("io", " Inc."),
    ("de", " GmbH"),
    ("co.uk", " Ltd"),
];

/// Sales regions (one VP each).
pub(crate) const REGIONS: [&str; 4] = ["North America", "EMEA", "APAC", "LATAM"];

/// Contact titles by slot within an account: executive, VP, director, practitioner, ops.
pub(crate) const CONTACT_TITLES: [&[&str]; 5] = [
    &[
        "CEO",
        "CFO",
        "COO",
        "CTO",
        "Chief Revenue Officer",
        "Chief Data Officer",
    ],
    &[
        "VP Engineering",
        "VP Operations",
        "VP Finance",
        "VP Sales",
        "VP IT",
    ],
    &[
        "Director of IT",
        "Director of Operations",
        "Head of Data",
        "Director of Engineering",
    ],
    &[
        "Senior Engineer",
        "Data Analyst",
        "Solutions Architect",
        "Business Analyst",
    ],
    &[
        "Procurement Manager",
        "Operations Manager",
        "IT Manager",
        "Finance Manager",
    ],
];

/// The deal role of a contact, by slot (see [`CONTACT_TITLES`]).
pub(crate) const CONTACT_ROLES: [&str; 5] = [
    "economic_buyer",
    "decision_maker",
    "champion",
    "technical_evaluator",
    "influencer",
];

/// Lead sources of deals.
pub(crate) const LEAD_SOURCES: [&str; 6] = [
    "inbound",
    "outbound",
    "partner",
    "event",
    "referral",
    "paid_search",
];
